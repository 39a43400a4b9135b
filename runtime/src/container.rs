//! Containers on disk: what was asked for ([`ContainerRecord`]), what is
//! happening ([`ContainerState`]), and where each piece lives.
//!
//! On-disk layout:
//!
//! ```text
//! <state_root>/containers/<id>/
//!   container.json     ContainerRecord, written once at create
//!   state.json         ContainerState, rewritten by the monitor (and by pause, unpause, cleanup)
//!   stop.json          a pending stop request (grace period), read by the monitor
//!   exec.lock          flock held while a process is exec'd into the container
//!                      and while it is being frozen, so that no exec is frozen half-way
//!   monitor.log        the monitor's own diagnostics
//!   container.log[.N]  the container's output (json-file format, see `logs`)
//!   upper/ work/       the container's overlayfs upper and work directories
//!   bundle/config.json the OCI runtime spec of the current run
//!   bundle/rootfs/     mount point of the overlay
//! <run_dir>/oci/<id>/  libcontainer's state of the current run (tmpfs: gone after reboot)
//! ```
//!
//! Invariant: `state.json` is the only file the monitor and the CLI both
//! write, always atomically and under `<id>/lock`. Only `pause` and
//! `unpause` set and clear [`Status::Paused`]; the monitor changes the status
//! only when a run starts or ends, so a paused run stays paused.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::config::ContainerConfig;
use crate::fsutil;
use crate::health::HealthState;

/// Where the runtime keeps its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    /// Persistent state (`/var/lib/rcompose`).
    pub state_root: PathBuf,
    /// Volatile state (`/run/rcompose`).
    pub run_dir: PathBuf,
}

impl Paths {
    /// Directory of one container.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.state_root.join("containers").join(id)
    }

    /// Directory holding every container.
    pub fn containers_dir(&self) -> PathBuf {
        self.state_root.join("containers")
    }

    /// libcontainer's state root.
    pub fn oci_root(&self) -> PathBuf {
        self.run_dir.join("oci")
    }
}

/// The image a container was created from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    /// Normalized reference.
    pub reference: String,
    /// Image id (config digest).
    pub id: String,
    /// Layer diff ids, bottom first.
    pub layers: Vec<String>,
}

/// What a container was created as; never changes afterwards.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// Container id (also its name, `<project>-<service>-<n>` for stacks).
    pub id: String,
    /// Settings.
    pub config: ContainerConfig,
    /// Image.
    pub image: ImageRef,
    /// Creation time, RFC 3339.
    pub created: String,
}

/// Lifecycle status, as `docker ps` names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, never started or not started again.
    #[default]
    Created,
    /// The process runs.
    Running,
    /// Its processes are frozen (cgroup freezer) until unpaused.
    Paused,
    /// Exited; the monitor waits to start it again.
    Restarting,
    /// Exited and stays so.
    Exited,
    /// Its monitor disappeared without recording an exit (crash, reboot).
    Dead,
}

impl Status {
    /// Running, paused or restarting: its monitor watches over it (a
    /// container that must be stopped before it is removed).
    pub fn is_live(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

/// What is happening to a container; written by its monitor.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerState {
    /// Status.
    pub status: Status,
    /// Host pid of the container's PID 1 while running.
    pub pid: i32,
    /// Pid of the monitor while it lives.
    pub monitor_pid: i32,
    /// Start time of the monitor (clock ticks after boot, from /proc), to tell pid reuse.
    pub monitor_start: u64,
    /// When the current or last run started (RFC 3339).
    pub started_at: Option<String>,
    /// When the last run ended (RFC 3339).
    pub finished_at: Option<String>,
    /// Exit code of the last run (128 + signal when killed).
    pub exit_code: Option<i32>,
    /// Whether the kernel OOM-killed a process of the last run.
    pub oom_killed: bool,
    /// Restarts done by the restart policy.
    pub restart_count: u32,
    /// Healthcheck state, when the container has one.
    pub health: Option<HealthState>,
    /// Why the last start failed.
    pub error: Option<String>,
    /// Whether the user stopped it (no restart afterwards).
    pub stopped_by_user: bool,
}

/// A container as listed: its record and its state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ContainerInfo {
    /// What it was created as.
    pub record: ContainerRecord,
    /// What is happening.
    pub state: ContainerState,
}

/// Why a container operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// Reading or writing a state file failed.
    #[error("failed to access {path}")]
    Io {
        /// File concerned.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// No container by that id.
    #[error("no such container: {0}")]
    NotFound(String),
    /// A container by that id exists.
    #[error("container {0} already exists")]
    Exists(String),
    /// The id is not usable as a container name.
    #[error("invalid container name {0:?}: use letters, digits, '_', '.', '-'")]
    InvalidName(String),
    /// The image is not in the store.
    #[error("failed to find image {reference} for container {id}")]
    Image {
        /// Container.
        id: String,
        /// Image reference.
        reference: String,
        /// Cause.
        #[source]
        source: crate::store::StoreError,
    },
    /// The monitor could not be started or reported an error.
    #[error("failed to start container {id}: {message}")]
    Start {
        /// Container.
        id: String,
        /// What the monitor said.
        message: String,
    },
    /// The operation needs a running container.
    #[error("container {0} is not running")]
    NotRunning(String),
    /// Freezing, thawing or reading the container's cgroup failed.
    #[error("failed to {action} container {id}")]
    Cgroup {
        /// What was being done (`pause`, `unpause`, `list the processes of`).
        action: &'static str,
        /// Container.
        id: String,
        /// Cause.
        #[source]
        source: Box<crate::cgroups::CgroupError>,
    },
    /// The container runs and `force` was not given.
    #[error("container {0} is running: stop it first or force the removal")]
    Running(String),
    /// A signal could not be sent.
    #[error("failed to signal container {id}")]
    Signal {
        /// Container.
        id: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The signal name is not known.
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    /// Exec failed.
    #[error(transparent)]
    Oci(#[from] crate::oci::OciError),
}

/// Turns an io error on `path` into a [`ContainerError`].
pub fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ContainerError + '_ {
    move |source| ContainerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether `id` is a valid container id (as Docker names go).
pub fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The files of one container.
#[derive(Clone, Debug)]
pub struct Files {
    dir: PathBuf,
}

impl Files {
    /// Files of the container in `dir`.
    pub fn new(dir: PathBuf) -> Files {
        Files { dir }
    }

    /// The container directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of one file in it.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Reads `container.json`.
    pub fn record(&self) -> Result<ContainerRecord, ContainerError> {
        let path = self.path("container.json");
        fsutil::read_json(&path)
            .map_err(io_err(&path))?
            .ok_or_else(|| ContainerError::NotFound(self.id()))
    }

    fn id(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Reads `state.json` (default state when missing).
    pub fn state(&self) -> Result<ContainerState, ContainerError> {
        let path = self.path("state.json");
        Ok(fsutil::read_json(&path)
            .map_err(io_err(&path))?
            .unwrap_or_default())
    }

    /// Takes `exec.lock`. An exec that a freeze catches half-way blocks its
    /// caller until the container is thawed; holding this lock around both
    /// keeps them apart. Taken before the state lock, never while holding it.
    pub fn exec_lock(&self) -> Result<fsutil::LockGuard, ContainerError> {
        let path = self.path("exec.lock");
        fsutil::lock(&path).map_err(io_err(&path))
    }

    /// Changes `state.json` under the container lock; returns the new state.
    pub fn update(
        &self,
        change: impl FnOnce(&mut ContainerState),
    ) -> Result<ContainerState, ContainerError> {
        let lock = self.path("lock");
        let _guard = fsutil::lock(&lock).map_err(io_err(&lock))?;
        let mut state = self.state()?;
        change(&mut state);
        let path = self.path("state.json");
        fsutil::write_json(&path, &state).map_err(io_err(&path))?;
        Ok(state)
    }
}

/// Current time as RFC 3339.
pub fn now_rfc3339() -> String {
    crate::logs::format_rfc3339(SystemTime::now())
}

/// Start time of a process (field 22 of /proc/<pid>/stat), `None` when it is gone.
pub fn process_start(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

/// Fields 3 onwards (state, ppid, …) of the text of a /proc/<pid>/stat file,
/// so that field `n` is `.nth(n - 3)`.
pub fn stat_fields(stat: &str) -> Option<impl Iterator<Item = &str>> {
    // The command name (field 2) may hold spaces and parentheses: skip past its last ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    Some(rest.trim_end().split(' '))
}

/// The start-time field (22) of the text of a /proc/<pid>/stat file.
pub fn parse_start_time(stat: &str) -> Option<u64> {
    stat_fields(stat)?.nth(19)?.parse().ok()
}

/// Whether process `pid` exists and is not a zombie.
pub fn process_running(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat_fields(&stat).and_then(|mut f| f.next());
    pid > 0 && matches!(state, Some(s) if s != "Z" && s != "X")
}

/// Whether the monitor recorded in `state` is still the same live process.
pub fn monitor_alive(state: &ContainerState) -> bool {
    state.monitor_pid > 0 && process_start(state.monitor_pid) == Some(state.monitor_start)
}

pub use rcompose_reconciler::wait::Backoff;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_follow_docker_naming_rules() {
        assert!(valid_id("proj-web-1"));
        assert!(valid_id("a.b_c"));
        assert!(!valid_id("-x"));
        assert!(!valid_id("a/b"));
        assert!(!valid_id(""));
    }

    #[test]
    fn the_start_time_is_read_past_a_command_name_with_spaces() {
        let stat =
            "42 (my (odd) cmd) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 50";
        assert_eq!(parse_start_time(stat), Some(98765));
    }

    #[test]
    fn this_process_is_alive_and_a_wrong_start_time_is_not() {
        let pid = std::process::id() as i32;
        let start = process_start(pid).unwrap();
        let alive = ContainerState {
            monitor_pid: pid,
            monitor_start: start,
            ..Default::default()
        };
        assert!(monitor_alive(&alive));
        let reused = ContainerState {
            monitor_start: start + 1,
            ..alive
        };
        assert!(!monitor_alive(&reused));
    }

    #[test]
    fn state_updates_are_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(dir.path().to_path_buf());
        files.update(|s| s.restart_count = 2).unwrap();
        assert_eq!(files.state().unwrap().restart_count, 2);
    }
}
