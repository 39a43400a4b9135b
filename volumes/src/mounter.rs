//! The `Mounter` seam: the host operations of this crate that need root —
//! mount(2), umount(2) and chown(2) — behind one trait, so that drivers and
//! secrets build a pure [`HostMount`] description and tests check it
//! without root. [`LinuxMounter`] is the real implementation.
//!
//! Invariant: `unmount` of a path with nothing mounted on it succeeds, so
//! cleanup can be retried.

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

/// One mount to make on the host, in mount(8) terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostMount {
    /// Device or source path (`tmpfs`, `/srv/data`).
    pub source: String,
    /// Mount point on the host.
    pub target: PathBuf,
    /// Filesystem type (`tmpfs`, or `none` for a bind mount).
    pub fstype: String,
    /// Options: flag words (`bind`, `rbind`, `ro`, `nosuid`, …) and
    /// filesystem data (`size=64m`, `mode=0700`, …), in order.
    pub options: Vec<String>,
}

impl HostMount {
    /// Whether this is a bind mount (`bind` or `rbind` among the options).
    pub fn is_bind(&self) -> bool {
        self.options.iter().any(|o| o == "bind" || o == "rbind")
    }
}

/// Mounts, unmounts and changes ownership on the host.
pub trait Mounter: Send + Sync {
    /// Makes `mount` (a read-only bind mount is remounted read-only).
    fn mount(&self, mount: &HostMount) -> io::Result<()>;
    /// Detaches whatever is mounted on `target`; nothing mounted is success.
    fn unmount(&self, target: &Path) -> io::Result<()>;
    /// Whether something is mounted exactly on `target`.
    fn is_mounted(&self, target: &Path) -> io::Result<bool>;
    /// Changes the owner of `path` (not following a symlink).
    fn chown(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()>;
}

/// The kernel's mount(2), umount(2) and lchown(2).
#[derive(Debug, Clone, Copy, Default)]
pub struct LinuxMounter;

impl Mounter for LinuxMounter {
    fn mount(&self, mount: &HostMount) -> io::Result<()> {
        let (flags, data) = split_options(&mount.options);
        let data = (!data.is_empty()).then_some(data.as_str());
        let fstype = (!mount.is_bind()).then_some(mount.fstype.as_str());
        nix::mount::mount(
            Some(mount.source.as_str()),
            &mount.target,
            fstype,
            flags,
            data,
        )?;
        if mount.is_bind() && flags.contains(MsFlags::MS_RDONLY) {
            remount_read_only(mount, flags)?;
        }
        Ok(())
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        rcompose_runtime::rootfs::unmount(target)
    }

    fn is_mounted(&self, target: &Path) -> io::Result<bool> {
        Ok(rcompose_runtime::rootfs::is_mounted(target))
    }

    fn chown(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
    }
}

/// A bind mount ignores `MS_RDONLY` on the first call; the kernel wants a
/// remount for it.
fn remount_read_only(mount: &HostMount, flags: MsFlags) -> io::Result<()> {
    let flags = (flags & !MsFlags::MS_REC) | MsFlags::MS_REMOUNT | MsFlags::MS_BIND;
    let result = nix::mount::mount(
        None::<&str>,
        &mount.target,
        None::<&str>,
        flags,
        None::<&str>,
    );
    if let Err(e) = result {
        let _ = rcompose_runtime::rootfs::unmount(&mount.target);
        return Err(e.into());
    }
    Ok(())
}

/// Splits mount(8) options into mount flags and the data string.
pub(crate) fn split_options(options: &[String]) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for option in options {
        match flag_of(option) {
            Some(flag) => flags |= flag,
            None if option == "rw" => {}
            None => data.push(option.as_str()),
        }
    }
    (flags, data.join(","))
}

fn flag_of(option: &str) -> Option<MsFlags> {
    Some(match option {
        "bind" => MsFlags::MS_BIND,
        "rbind" => MsFlags::MS_BIND | MsFlags::MS_REC,
        "ro" => MsFlags::MS_RDONLY,
        "nosuid" => MsFlags::MS_NOSUID,
        "nodev" => MsFlags::MS_NODEV,
        "noexec" => MsFlags::MS_NOEXEC,
        "sync" => MsFlags::MS_SYNCHRONOUS,
        "dirsync" => MsFlags::MS_DIRSYNC,
        "noatime" => MsFlags::MS_NOATIME,
        "nodiratime" => MsFlags::MS_NODIRATIME,
        "relatime" => MsFlags::MS_RELATIME,
        "strictatime" => MsFlags::MS_STRICTATIME,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split(',').map(str::to_string).collect()
    }

    #[test]
    fn flag_words_become_flags_and_the_rest_becomes_data() {
        let (flags, data) = split_options(&words("nosuid,size=64m,ro,mode=0700,rw"));
        assert_eq!(flags, MsFlags::MS_NOSUID | MsFlags::MS_RDONLY);
        assert_eq!(data, "size=64m,mode=0700");
    }

    #[test]
    fn rbind_is_a_recursive_bind() {
        let mount = HostMount {
            source: "/srv".into(),
            target: "/mnt".into(),
            fstype: "none".into(),
            options: words("rbind"),
        };
        assert!(mount.is_bind());
        let (flags, _) = split_options(&mount.options);
        assert_eq!(flags, MsFlags::MS_BIND | MsFlags::MS_REC);
    }
}
