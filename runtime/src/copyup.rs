//! Copy-up: a volume mounted over a directory of the image starts with that
//! directory's content, as in Docker. Runs once the rootfs is mounted and
//! before the container exists, for every mount carrying
//! [`COPY_UP_OPTION`](crate::config::COPY_UP_OPTION) whose source is empty.
//!
//! The image is untrusted: the mount target is resolved with a
//! [`pathrs::Root`], so a symlink in the image (`/data -> /etc`) resolves inside
//! the rootfs and never to a host path. Below it the tree is walked with
//! `openat(O_NOFOLLOW)` relative to directory descriptors; symlinks are copied
//! as symlinks, never followed. Regular files, directories and symlinks are
//! copied with owner, group, mode and times; other kinds (devices, sockets,
//! fifos) are skipped. Hard links become separate files.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use pathrs::Root;
use pathrs::flags::OpenFlags;
use rustix::fs::{
    AtFlags, Dir, FileType, Gid, Mode, OFlags, Stat, Timestamps, Uid, chownat, fchmod, fchown,
    futimens, mkdirat, openat, readlinkat, statat, symlinkat, utimensat,
};
use rustix::time::Timespec;

use crate::config::{COPY_UP_OPTION, MountSpec};

/// Why the image's content could not be copied into a volume.
#[derive(Debug, thiserror::Error)]
pub enum CopyUpError {
    /// The volume directory could not be opened or read.
    #[error("failed to open volume directory {path} for copy-up")]
    Destination {
        /// Volume directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The rootfs could not be opened.
    #[error("failed to open rootfs {path} for copy-up")]
    Rootfs {
        /// Rootfs directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: pathrs::error::Error,
    },
    /// One entry could not be copied.
    #[error("failed to copy {path} of the image into volume {volume}")]
    Copy {
        /// Path inside the container.
        path: PathBuf,
        /// Volume directory.
        volume: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

/// Copies the image's content into every empty copy-up mount source.
pub fn copy_up_mounts(rootfs: &Path, mounts: &[MountSpec]) -> Result<(), CopyUpError> {
    let marked = mounts
        .iter()
        .filter(|m| m.options.iter().any(|o| o == COPY_UP_OPTION));
    for mount in marked {
        copy_up(rootfs, &mount.target, Path::new(&mount.source))?;
    }
    Ok(())
}

/// Copies the directory at `target` in `rootfs` into `volume` when `volume` is
/// empty and the image has a directory there. Returns whether it copied.
pub fn copy_up(rootfs: &Path, target: &str, volume: &Path) -> Result<bool, CopyUpError> {
    let destination = |source| CopyUpError::Destination {
        path: volume.to_path_buf(),
        source,
    };
    let dst = open_dir(rustix::fs::CWD, volume).map_err(|e| destination(e.into()))?;
    if !is_empty(dst.as_fd()).map_err(|e| destination(e.into()))? {
        return Ok(false);
    }
    let root = Root::open(rootfs).map_err(|source| CopyUpError::Rootfs {
        path: rootfs.to_path_buf(),
        source,
    })?;
    let Some(src) = image_dir(&root, target) else {
        return Ok(false);
    };
    let copy = Copy {
        volume,
        target: Path::new(target),
    };
    copy.tree(src.as_fd(), dst.as_fd(), Path::new(""))?;
    let stat = rustix::fs::fstat(&src).map_err(|e| copy.error(Path::new(""), e))?;
    copy_metadata(dst.as_fd(), &stat).map_err(|e| copy.error(Path::new(""), e))?;
    Ok(true)
}

/// The image's directory at `target`, resolved inside the rootfs; `None` when
/// there is none (missing, not a directory, or escaping).
fn image_dir(root: &Root, target: &str) -> Option<File> {
    let handle = match root.resolve(target) {
        Ok(handle) => handle,
        Err(error) => {
            tracing::debug!(target, %error, "nothing to copy up");
            return None;
        }
    };
    let flags = OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY;
    handle
        .reopen(flags)
        .inspect_err(|error| tracing::debug!(target, %error, "image path is not a directory"))
        .ok()
}

fn open_dir<Fd: AsFd>(dir: Fd, name: &Path) -> rustix::io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    openat(dir, name, flags, Mode::empty())
}

/// Whether a directory has no entries besides `.` and `..`.
fn is_empty(dir: BorrowedFd<'_>) -> rustix::io::Result<bool> {
    let mut entries = Dir::read_from(dir)?;
    while let Some(entry) = entries.read() {
        if !is_dot(entry?.file_name().to_bytes()) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn is_dot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

/// One copy-up, for error messages.
struct Copy<'a> {
    volume: &'a Path,
    target: &'a Path,
}

impl Copy<'_> {
    fn error(&self, relative: &Path, source: impl Into<io::Error>) -> CopyUpError {
        CopyUpError::Copy {
            path: self.target.join(relative),
            volume: self.volume.to_path_buf(),
            source: source.into(),
        }
    }

    /// Copies the entries of `src` into `dst`; `relative` is `src` below the target.
    fn tree(
        &self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        relative: &Path,
    ) -> Result<(), CopyUpError> {
        let mut entries = Dir::read_from(src).map_err(|e| self.error(relative, e))?;
        while let Some(entry) = entries.read() {
            let entry = entry.map_err(|e| self.error(relative, e))?;
            let name = entry.file_name();
            if is_dot(name.to_bytes()) {
                continue;
            }
            let path = relative.join(std::ffi::OsStr::from_bytes(name.to_bytes()));
            self.entry(src, dst, &path)?;
        }
        Ok(())
    }

    /// Copies one entry named by the last component of `path`.
    fn entry(
        &self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        path: &Path,
    ) -> Result<(), CopyUpError> {
        let fail = |e: rustix::io::Errno| self.error(path, e);
        let name = path.file_name().unwrap_or_default();
        let stat = statat(src, name, AtFlags::SYMLINK_NOFOLLOW).map_err(fail)?;
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => {
                mkdirat(dst, name, Mode::RWXU).map_err(fail)?;
                let from = open_dir(src, name.as_ref()).map_err(fail)?;
                let to = open_dir(dst, name.as_ref()).map_err(fail)?;
                self.tree(from.as_fd(), to.as_fd(), path)?;
                copy_metadata(to.as_fd(), &stat).map_err(fail)
            }
            FileType::RegularFile => {
                copy_file(src, dst, name.as_ref(), &stat).map_err(|e| self.error(path, e))
            }
            FileType::Symlink => copy_symlink(src, dst, name.as_ref(), &stat).map_err(fail),
            other => {
                tracing::debug!(path = %self.target.join(path).display(), ?other, "not copied up");
                Ok(())
            }
        }
    }
}

/// Copies a regular file's content, owner, mode and times.
fn copy_file(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, name: &Path, stat: &Stat) -> io::Result<()> {
    let read = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut from = File::from(openat(src, name, read, Mode::empty())?);
    let create =
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut to = File::from(openat(dst, name, create, Mode::RUSR | Mode::WUSR)?);
    io::copy(&mut from, &mut to)?;
    copy_metadata(to.as_fd(), stat)?;
    Ok(())
}

/// Recreates a symlink with the same link text, owner and times.
fn copy_symlink(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    name: &Path,
    stat: &Stat,
) -> rustix::io::Result<()> {
    let link = readlinkat(src, name, Vec::new())?;
    symlinkat(link.as_c_str(), dst, name)?;
    let (uid, gid) = owner(stat);
    chownat(dst, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)?;
    utimensat(dst, name, &times(stat), AtFlags::SYMLINK_NOFOLLOW)
}

/// Gives an open file or directory the owner, mode and times of `stat`
/// (owner first: changing it clears set-id bits).
fn copy_metadata(fd: BorrowedFd<'_>, stat: &Stat) -> rustix::io::Result<()> {
    let (uid, gid) = owner(stat);
    fchown(fd, Some(uid), Some(gid))?;
    fchmod(fd, Mode::from_raw_mode(stat.st_mode & 0o7777))?;
    futimens(fd, &times(stat))
}

fn owner(stat: &Stat) -> (Uid, Gid) {
    (Uid::from_raw(stat.st_uid), Gid::from_raw(stat.st_gid))
}

fn times(stat: &Stat) -> Timestamps {
    let at = |sec: i64, nsec: i64| Timespec {
        tv_sec: sec,
        tv_nsec: nsec as _,
    };
    Timestamps {
        last_access: at(stat.st_atime, stat.st_atime_nsec as i64),
        last_modification: at(stat.st_mtime, stat.st_mtime_nsec as i64),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _, symlink};

    use super::*;

    /// A rootfs and an empty volume directory in one temporary directory.
    fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let rootfs = tmp.path().join("rootfs");
        let volume = tmp.path().join("volume");
        fs::create_dir_all(&rootfs).unwrap();
        fs::create_dir_all(&volume).unwrap();
        (tmp, rootfs, volume)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn set_mtime(path: &Path, secs: i64) {
        let at = Timespec {
            tv_sec: secs,
            tv_nsec: 0,
        };
        let times = Timestamps {
            last_access: at,
            last_modification: at,
        };
        utimensat(rustix::fs::CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
    }

    /// `rootfs/data` with a file, a nested directory and two symlinks.
    fn image_data(rootfs: &Path) -> PathBuf {
        let data = rootfs.join("data");
        fs::create_dir_all(data.join("sub")).unwrap();
        fs::write(data.join("a.txt"), "alpha").unwrap();
        fs::set_permissions(data.join("a.txt"), fs::Permissions::from_mode(0o640)).unwrap();
        fs::write(data.join("sub/b.txt"), "beta").unwrap();
        symlink("a.txt", data.join("rel")).unwrap();
        symlink("/etc/passwd", data.join("abs")).unwrap();
        fs::set_permissions(&data, fs::Permissions::from_mode(0o751)).unwrap();
        set_mtime(&data.join("a.txt"), 1_000_000);
        set_mtime(&data.join("abs"), 2_000_000);
        set_mtime(&data.join("sub"), 3_000_000);
        data
    }

    #[test]
    fn the_image_directory_is_copied_into_an_empty_volume() {
        let (_tmp, rootfs, volume) = dirs();
        image_data(&rootfs);
        assert!(copy_up(&rootfs, "/data", &volume).unwrap());
        assert_eq!(names(&volume), ["a.txt", "abs", "rel", "sub"]);
        assert_eq!(
            fs::read_to_string(volume.join("sub/b.txt")).unwrap(),
            "beta"
        );
        let a = fs::metadata(volume.join("a.txt")).unwrap();
        assert_eq!((a.mode() & 0o7777, a.mtime()), (0o640, 1_000_000));
        assert_eq!(fs::metadata(volume.join("sub")).unwrap().mtime(), 3_000_000);
        assert_eq!(fs::metadata(&volume).unwrap().mode() & 0o7777, 0o751);
    }

    #[test]
    fn symlinks_are_copied_as_links_and_never_followed() {
        let (_tmp, rootfs, volume) = dirs();
        image_data(&rootfs);
        copy_up(&rootfs, "/data", &volume).unwrap();
        assert_eq!(
            fs::read_link(volume.join("abs")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert_eq!(
            fs::read_link(volume.join("rel")).unwrap(),
            Path::new("a.txt")
        );
        let abs = fs::symlink_metadata(volume.join("abs")).unwrap();
        assert!(abs.file_type().is_symlink());
        assert_eq!(abs.mtime(), 2_000_000);
    }

    #[test]
    fn a_volume_that_is_not_empty_is_left_alone() {
        let (_tmp, rootfs, volume) = dirs();
        image_data(&rootfs);
        fs::write(volume.join("mine"), "kept").unwrap();
        assert!(!copy_up(&rootfs, "/data", &volume).unwrap());
        assert_eq!(names(&volume), ["mine"]);
    }

    #[test]
    fn a_missing_or_non_directory_target_copies_nothing() {
        let (_tmp, rootfs, volume) = dirs();
        fs::write(rootfs.join("file"), "x").unwrap();
        assert!(!copy_up(&rootfs, "/missing/dir", &volume).unwrap());
        assert!(!copy_up(&rootfs, "/file", &volume).unwrap());
        assert!(names(&volume).is_empty());
    }

    #[test]
    fn a_hostile_image_symlink_cannot_reach_host_files() {
        let (_tmp, rootfs, volume) = dirs();
        symlink("/etc", rootfs.join("data")).unwrap();
        symlink("../../../../../../etc", rootfs.join("up")).unwrap();
        assert!(!copy_up(&rootfs, "/data", &volume).unwrap());
        assert!(!copy_up(&rootfs, "/up", &volume).unwrap());
        assert!(!copy_up(&rootfs, "/../../../etc", &volume).unwrap());
        assert!(names(&volume).is_empty());
    }

    #[test]
    fn an_image_symlink_resolves_inside_the_rootfs() {
        let (_tmp, rootfs, volume) = dirs();
        fs::create_dir_all(rootfs.join("etc")).unwrap();
        fs::write(rootfs.join("etc/image-only"), "image").unwrap();
        symlink("/etc", rootfs.join("data")).unwrap();
        assert!(copy_up(&rootfs, "/data", &volume).unwrap());
        assert_eq!(names(&volume), ["image-only"]);
    }

    #[test]
    fn sockets_are_skipped() {
        let (_tmp, rootfs, volume) = dirs();
        let data = image_data(&rootfs);
        let _listener = std::os::unix::net::UnixListener::bind(data.join("sock")).unwrap();
        assert!(copy_up(&rootfs, "/data", &volume).unwrap());
        assert!(!names(&volume).contains(&"sock".to_string()));
    }

    #[test]
    fn only_mounts_marked_copy_up_are_filled() {
        let (tmp, rootfs, volume) = dirs();
        image_data(&rootfs);
        let plain = tmp.path().join("plain");
        fs::create_dir_all(&plain).unwrap();
        let mount = |source: &Path, options: &[&str]| MountSpec {
            target: "/data".into(),
            source: source.display().to_string(),
            kind: "bind".into(),
            options: options.iter().map(|o| o.to_string()).collect(),
        };
        let mounts = [
            mount(&volume, &["rbind", COPY_UP_OPTION]),
            mount(&plain, &["rbind"]),
        ];
        copy_up_mounts(&rootfs, &mounts).unwrap();
        assert_eq!(names(&volume).len(), 4);
        assert!(names(&plain).is_empty());
    }

    #[test]
    fn a_missing_volume_directory_is_an_error_naming_it() {
        let (tmp, rootfs, _volume) = dirs();
        let gone = tmp.path().join("gone");
        let err = copy_up(&rootfs, "/data", &gone).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "failed to open volume directory {} for copy-up",
                gone.display()
            )
        );
    }

    #[test]
    #[ignore = "needs root; scripts/test.sh runs it when root"]
    fn owners_and_set_id_modes_are_kept() {
        assert!(rustix::process::geteuid().is_root(), "needs root");
        let (_tmp, rootfs, volume) = dirs();
        let data = image_data(&rootfs);
        let own = |path: &Path, uid: u32, gid: u32| {
            let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
            chownat(
                rustix::fs::CWD,
                path,
                Some(uid),
                Some(gid),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .unwrap();
        };
        own(&data, 70, 71);
        own(&data.join("a.txt"), 1234, 5678);
        own(&data.join("abs"), 42, 43);
        fs::set_permissions(data.join("a.txt"), fs::Permissions::from_mode(0o4750)).unwrap();
        assert!(copy_up(&rootfs, "/data", &volume).unwrap());
        let a = fs::metadata(volume.join("a.txt")).unwrap();
        assert_eq!((a.uid(), a.gid(), a.mode() & 0o7777), (1234, 5678, 0o4750));
        let link = fs::symlink_metadata(volume.join("abs")).unwrap();
        assert_eq!((link.uid(), link.gid()), (42, 43));
        let root = fs::metadata(&volume).unwrap();
        assert_eq!((root.uid(), root.gid()), (70, 71));
    }
}
