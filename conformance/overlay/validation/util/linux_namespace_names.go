package util

// GetRuntimeToolsNamespace converts a namespace name as found under
// /proc/*/ns/ to the name runtime-tools' generate package uses.
// (Part of the rcompose conformance harness: older source trees of
// validation/util lack it.)
func GetRuntimeToolsNamespace(ns string) string {
	switch ns {
	case "mnt":
		return "mount"
	case "net":
		return "network"
	}
	return ns
}
