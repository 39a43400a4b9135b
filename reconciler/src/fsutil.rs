//! Small crash-safe file helpers shared by every module that persists state.
//!
//! Invariant: a reader sees either the old or the new content of a file,
//! never a torn write (temp file in the same directory, fsync, rename, fsync
//! of the directory).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Replaces `path` with `bytes` atomically, and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, true)
}

/// Replaces `path` with `bytes` atomically but without waiting for the disk
/// (no fsync): for files made again from the records before each use (a
/// bundle's `config.json`, the DNS table, the firewall stamp), which a crash
/// may lose or leave empty without harm. Readers still never see a torn
/// write.
pub fn write_atomic_unsynced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, false)
}

fn replace(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    file.write_all(bytes)?;
    if durable {
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if durable {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Creates `dir` (and its parents) as a directory of unrelated trees, one
/// per container or volume: where the file system supports it, `dir` gets
/// `FS_TOPDIR_FL` (`chattr +T`), so that ext4 places each subdirectory, and
/// the files made in it, in a block group of its own instead of its
/// parent's. Without it every container's files share one group, and on a
/// file system without a journal each new inode is allocated only after a
/// look at every inode freed in that group in the last 30 seconds (ext4's
/// `recently_deleted`), which makes an `up` right after a `down` quadratic
/// in the number of containers. A file system without the flag just makes
/// the directory.
pub fn create_top_dir(dir: &Path) -> io::Result<()> {
    use rustix::fs::IFlags;
    fs::create_dir_all(dir)?;
    let Ok(file) = File::open(dir) else {
        return Ok(());
    };
    if let Ok(flags) = rustix::fs::ioctl_getflags(&file)
        && !flags.contains(IFlags::TOPDIR)
    {
        // Best effort: not every file system knows the flag.
        let _ = rustix::fs::ioctl_setflags(&file, flags | IFlags::TOPDIR);
    }
    Ok(())
}

/// Serializes `value` as pretty JSON and writes it atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> io::Result<()> {
    write_atomic(path, &json_bytes(value)?)
}

/// [`write_json`] without waiting for the disk, as
/// [`write_atomic_unsynced`]: for what a crash may lose without harm.
pub fn write_json_unsynced<T: serde::Serialize>(path: &Path, value: &T) -> io::Result<()> {
    write_atomic_unsynced(path, &json_bytes(value)?)
}

fn json_bytes<T: serde::Serialize>(value: &T) -> io::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Reads a JSON file; `Ok(None)` when it does not exist.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// An exclusive advisory lock held until dropped.
pub struct LockGuard {
    _file: File,
}

/// Takes an exclusive lock on `path` (created if missing), waiting for it.
pub fn lock(path: &Path) -> io::Result<LockGuard> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    file.lock()?;
    Ok(LockGuard { _file: file })
}

/// Removes a directory tree; a missing one is not an error.
pub fn remove_dir_all_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_top_dir_is_made_with_its_parents_and_marked_where_the_file_system_can() {
        use rustix::fs::IFlags;
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().join("state/containers");
        create_top_dir(&dir).unwrap();
        create_top_dir(&dir).unwrap();
        assert!(dir.is_dir());
        let flags = rustix::fs::ioctl_getflags(File::open(&dir).unwrap());
        let parent = rustix::fs::ioctl_getflags(File::open(dir.parent().unwrap()).unwrap());
        match (flags, parent) {
            // A file system without per-file flags (tmpfs): just the directory.
            (Err(_), _) => {}
            (Ok(flags), Ok(parent)) => {
                assert!(flags.contains(IFlags::TOPDIR), "{flags:?}");
                assert!(!parent.contains(IFlags::TOPDIR), "{parent:?}");
            }
            (Ok(_), Err(e)) => panic!("flags of the parent: {e}"),
        }
    }

    #[test]
    fn an_atomic_write_replaces_the_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_json(&path, &vec![1, 2]).unwrap();
        write_json(&path, &vec![3]).unwrap();
        assert_eq!(read_json::<Vec<i32>>(&path).unwrap(), Some(vec![3]));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(
            read_json::<Vec<i32>>(&dir.path().join("none")).unwrap(),
            None
        );
    }

    #[test]
    fn an_unsynced_atomic_write_replaces_the_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        write_atomic_unsynced(&path, b"one").unwrap();
        write_atomic_unsynced(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
