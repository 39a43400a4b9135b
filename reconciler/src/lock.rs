//! The project lock: held while a plan is applied, so that `watch` and a
//! manual `up` (or two `up`s) never change one project at the same time.
//!
//! On-disk layout: `<dir>/<project>.lock`, created on first use and never
//! removed (removing it would let a waiter lock a file that a newcomer
//! recreates under it). The holder writes `pid <n>\ncommand <line>\n` into
//! it, only for the message a waiter shows; the lock itself is the
//! advisory lock on the open file (`flock`), which the kernel drops when
//! the holder exits, however it exits.
//!
//! Invariants: the lock is per open file, so two [`ProjectLock`]s on one
//! project conflict even inside one process; it is released when the
//! [`ProjectLock`] is dropped.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often a waiter tries again.
const POLL: Duration = Duration::from_millis(50);

/// An exclusive lock on one project, released on drop.
#[derive(Debug)]
pub struct ProjectLock {
    file: File,
    path: PathBuf,
}

/// Who holds a lock, as its holder wrote it into the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Holder {
    /// Process id.
    pub pid: Option<u32>,
    /// Command line (`rcompose up -d`).
    pub command: Option<String>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.pid, &self.command) {
            (Some(pid), Some(command)) => write!(f, "pid {pid} ({command})"),
            (Some(pid), None) => write!(f, "pid {pid}"),
            _ => write!(f, "another process"),
        }
    }
}

/// Why the project lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process held the lock for longer than the timeout.
    #[error(
        "project {project} is locked by {holder}; waited {} — use --lock-timeout to wait longer",
        human(*.waited)
    )]
    Locked {
        /// The project.
        project: String,
        /// Who holds it.
        holder: Holder,
        /// How long we waited (the timeout).
        waited: Duration,
    },
    /// The lock file could not be opened or created.
    #[error("failed to open lock file {path}")]
    Open {
        /// The lock file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Locking failed for another reason than another holder.
    #[error("failed to lock {path}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The holder's pid and command could not be written.
    #[error("failed to write the holder into lock file {path}")]
    Write {
        /// The lock file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

impl ProjectLock {
    /// Takes the lock of `project` in `dir`, trying every 50 ms until
    /// `timeout` (`None`: wait for ever; zero: try once). The holder is
    /// recorded as this process and its command line.
    pub fn acquire(
        dir: &Path,
        project: &str,
        timeout: Option<Duration>,
    ) -> Result<Self, LockError> {
        Self::acquire_as(dir, project, timeout, &command_line())
    }

    /// [`Self::acquire`], recording `command` as what the holder runs.
    pub fn acquire_as(
        dir: &Path,
        project: &str,
        timeout: Option<Duration>,
        command: &str,
    ) -> Result<Self, LockError> {
        let path = dir.join(format!("{project}.lock"));
        let open = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path);
        let file = open.map_err(|source| LockError::Open {
            path: path.clone(),
            source,
        })?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(source)) => return Err(LockError::Lock { path, source }),
            }
            let waited = start.elapsed();
            let left = timeout.map(|t| t.saturating_sub(waited));
            if left == Some(Duration::ZERO) {
                return Err(LockError::Locked {
                    project: project.to_string(),
                    holder: read_holder(&path),
                    waited: timeout.unwrap_or(waited),
                });
            }
            std::thread::sleep(left.map_or(POLL, |l| l.min(POLL)));
        }
        let mut lock = Self { file, path };
        lock.write_holder(command)?;
        Ok(lock)
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_holder(&mut self, command: &str) -> Result<(), LockError> {
        let text = format!("pid {}\ncommand {command}\n", std::process::id());
        let write = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(text.as_bytes())
        };
        write(&mut self.file).map_err(|source| LockError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

impl Drop for ProjectLock {
    fn drop(&mut self) {
        // Closing the file releases the lock anyway; unlocking first makes
        // the release independent of when the descriptor is closed.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// The holder recorded in `path`; unknown parts are `None` (the holder may
/// not have written them yet).
pub fn read_holder(path: &Path) -> Holder {
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    let mut holder = Holder::default();
    for line in text.lines() {
        if let Some(pid) = line.strip_prefix("pid ") {
            holder.pid = pid.trim().parse().ok();
        } else if let Some(command) = line.strip_prefix("command ") {
            holder.command = Some(command.to_string()).filter(|c| !c.is_empty());
        }
    }
    holder
}

/// This process's command line, its program named without directories
/// (`rcompose up -d`).
fn command_line() -> String {
    let mut args = std::env::args();
    let program = args
        .next()
        .map(|p| {
            Path::new(&p)
                .file_name()
                .map_or(p.clone(), |n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "rcompose".into());
    std::iter::once(program)
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `5s`, `1.5s`, `250ms`.
fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 && ms > 0 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests;
