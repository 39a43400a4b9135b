//! Built-in container runtime (images, rootfs, namespaces, cgroups, monitor).
//! Not built yet: the loader comes first.
