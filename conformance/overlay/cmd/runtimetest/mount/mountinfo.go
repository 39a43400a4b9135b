package mount

// Info reveals information about a particular mounted filesystem.
// (Written for the rcompose conformance harness; only the fields that
// mountinfo_linux.go fills in.)
type Info struct {
	ID, Parent, Major, Minor                                  int
	Root, Mountpoint, Opts, Optional, Fstype, Source, VfsOpts string
}

// GetMounts retrieves a list of mounts for the current running process.
func GetMounts() ([]*Info, error) {
	return parseMountTable()
}
