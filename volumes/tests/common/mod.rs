//! Shared by the root tests: a temporary state root that unmounts whatever
//! a test left mounted under it, then deletes it, even when the test panics.

use std::path::{Path, PathBuf};

use rcompose_volumes::{LinuxMounter, Mounter, VolumePaths};
use tempfile::TempDir;

/// Fails the test unless it runs as root.
pub fn assert_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root; run it through scripts/test.sh as root"
    );
}

/// A temporary `<root>` and `<run>`, cleaned up on drop.
pub struct Scratch {
    dir: TempDir,
}

impl Scratch {
    /// A fresh scratch directory.
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The scratch directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Volume paths inside the scratch directory.
    pub fn paths(&self) -> VolumePaths {
        VolumePaths::new(&self.path().join("lib"), &self.path().join("run"))
    }

    /// Mount points under the scratch directory, deepest first.
    pub fn mounts(&self) -> Vec<PathBuf> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut out: Vec<PathBuf> = rcompose_runtime::rootfs::mount_points(&info)
            .map(PathBuf::from)
            .filter(|p| p.starts_with(self.path()))
            .collect();
        out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        out
    }
}

impl Default for Scratch {
    fn default() -> Scratch {
        Scratch::new()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for mount in self.mounts() {
            let _ = LinuxMounter.unmount(&mount);
        }
    }
}
