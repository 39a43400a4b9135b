//! Test support (feature `testing`): run the calling thread in a fresh
//! network namespace so that root tests touch nothing of the host's.
//!
//! A network namespace belongs to a thread, not to the process: threads and
//! processes started from the calling thread while the guard lives are in
//! the new namespace too; other test threads are not.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;

use nix::sched::{CloneFlags, setns, unshare};

/// The calling thread's network namespace, swapped for a new one until drop.
pub struct ThreadNetns {
    original: File,
    /// The new namespace, for tests that want to hand it to others.
    pub file: File,
}

impl ThreadNetns {
    /// Moves the calling thread into a new, empty network namespace (only a
    /// `lo` that is down). Needs root.
    pub fn enter_new() -> io::Result<ThreadNetns> {
        let original = File::open("/proc/thread-self/ns/net")?;
        unshare(CloneFlags::CLONE_NEWNET)?;
        let file = File::open("/proc/thread-self/ns/net")?;
        Ok(ThreadNetns { original, file })
    }
}

impl Drop for ThreadNetns {
    fn drop(&mut self) {
        // The namespace goes away with the last process and file using it.
        let _ = setns(self.original.as_fd(), CloneFlags::CLONE_NEWNET);
    }
}

/// True when running as root (root tests assert this).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
