//! Named network namespaces: a namespace kept alive by a bind mount of its
//! nsfs file onto `<run>/netns/<name>`, so it exists before the container's
//! process does (the runtime joins it by path) and outlives restarts of that
//! process.
//!
//! Invariant: the file exists iff the namespace is mounted there, with its
//! `lo` up; `create` and `remove` are idempotent.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

/// Failures of namespace files.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// Creating the namespace or its mount failed.
    #[error("failed to create network namespace {0}")]
    Create(String, #[source] io::Error),
    /// Unmounting or deleting the file failed.
    #[error("failed to remove network namespace {0}")]
    Remove(String, #[source] io::Error),
}

/// Creates a new network namespace mounted at `path` (nothing happens when
/// one is already mounted there).
pub fn create(path: &Path) -> Result<(), NetnsError> {
    let fail = |e: io::Error| NetnsError::Create(path.display().to_string(), e);
    if is_mounted(path) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(fail)?;
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(fail)?;
    let target = path.to_path_buf();
    // unshare moves only the calling thread, so a throwaway thread does it
    // and the caller's namespace never changes.
    let made = std::thread::spawn(move || -> io::Result<()> {
        unshare(CloneFlags::CLONE_NEWNET)?;
        loopback_up()?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )?;
        Ok(())
    })
    .join()
    .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")));
    if let Err(e) = made {
        let _ = fs::remove_file(path);
        return Err(fail(e));
    }
    Ok(())
}

/// Brings up `lo` of the calling thread's (new) namespace, as a container
/// without networks still has a working loopback.
fn loopback_up() -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        let task = tokio::spawn(conn);
        let result = handle
            .link()
            .set(rtnetlink::LinkUnspec::new_with_name("lo").up().build())
            .execute()
            .await
            .map_err(io::Error::other);
        task.abort();
        result
    })
}

/// Unmounts and deletes `path`; a missing file is success.
pub fn remove(path: &Path) -> Result<(), NetnsError> {
    let fail = |e: io::Error| NetnsError::Remove(path.display().to_string(), e);
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(fail(e.into())),
    }
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(fail(e)),
        _ => Ok(()),
    }
}

/// True when a network namespace is mounted at `path`.
pub fn is_mounted(path: &Path) -> bool {
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    nix::sys::statfs::statfs(path).is_ok_and(|s| s.filesystem_type().0 == NSFS_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_a_namespace_that_does_not_exist_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        remove(&dir.path().join("none")).unwrap();
        assert!(!is_mounted(&dir.path().join("none")));
    }
}
