//! Cgroups of containers, v1 and v2 alike: which layout the host has, where a
//! container's cgroup lives, its OOM-kill count, resource usage, its
//! processes, freezing (pause) and removal.
//!
//! Limits are applied by the OCI runtime layer from the spec's
//! `linux.resources`; this module reads, freezes and cleans up. Every
//! container's cgroup is `<hierarchy>/rcompose/<id>` (`cgroups_path`
//! `/rcompose/<id>`). Freezing goes through libcgroups, which waits until the
//! kernel reports the cgroup frozen: v1 writes `freezer.state` until it reads
//! `FROZEN`, v2 writes `cgroup.freeze` and waits for `frozen 1` in
//! `cgroup.events`.

use std::path::{Path, PathBuf};

use libcgroups::common::{CgroupConfig, CgroupManager as _, CgroupSetup, FreezerState};

/// Where cgroup hierarchies are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The cgroup path a container gets, relative to each hierarchy.
pub fn cgroups_path(id: &str) -> String {
    format!("/rcompose/{id}")
}

/// The host's cgroup layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// v1 controllers only.
    Legacy,
    /// v1 controllers with a v2 hierarchy beside them (managed as v1).
    Hybrid,
    /// v2 only.
    Unified,
}

impl Layout {
    /// Detects the layout from what is mounted at [`CGROUP_ROOT`].
    pub fn detect() -> Option<Layout> {
        libcgroups::common::get_cgroup_setup()
            .ok()
            .map(Layout::from)
    }

    /// The directory of a cgroup in the hierarchy that freezes it: the v1
    /// `freezer` controller, or the v2 hierarchy mounted at `root`.
    pub fn freezer_dir(self, root: &Path, cgroups_path: &str) -> PathBuf {
        let rel = cgroups_path.trim_start_matches('/');
        match self {
            Layout::Unified => root.join(rel),
            Layout::Legacy | Layout::Hybrid => root.join("freezer").join(rel),
        }
    }

    /// The file that tells whether a cgroup is frozen.
    pub fn freezer_file(self, root: &Path, cgroups_path: &str) -> PathBuf {
        let dir = self.freezer_dir(root, cgroups_path);
        match self {
            Layout::Unified => dir.join("cgroup.events"),
            Layout::Legacy | Layout::Hybrid => dir.join("freezer.state"),
        }
    }

    /// The file that counts OOM kills of a cgroup, and the key in it.
    pub fn oom_file(self, cgroups_path: &str) -> PathBuf {
        let rel = cgroups_path.trim_start_matches('/');
        match self {
            Layout::Unified => Path::new(CGROUP_ROOT).join(rel).join("memory.events"),
            Layout::Legacy | Layout::Hybrid => Path::new(CGROUP_ROOT)
                .join("memory")
                .join(rel)
                .join("memory.oom_control"),
        }
    }
}

impl From<CgroupSetup> for Layout {
    fn from(setup: CgroupSetup) -> Layout {
        match setup {
            CgroupSetup::Legacy => Layout::Legacy,
            CgroupSetup::Hybrid => Layout::Hybrid,
            CgroupSetup::Unified => Layout::Unified,
        }
    }
}

/// Why a cgroup operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// What is mounted at the cgroup root is not a known layout.
    #[error("failed to detect the cgroup layout under {root}")]
    Layout {
        /// Cgroup root.
        root: PathBuf,
        /// Cause.
        #[source]
        source: libcgroups::common::GetCgroupSetupError,
    },
    /// The cgroup does not exist (its container does not run).
    #[error("cgroup {path} does not exist")]
    Missing {
        /// Its directory.
        path: PathBuf,
    },
    /// libcgroups could not open the cgroup.
    #[error("failed to open cgroup {path}")]
    Open {
        /// Cgroup path relative to each hierarchy.
        path: String,
        /// Cause.
        #[source]
        source: libcgroups::common::CreateCgroupSetupError,
    },
    /// Freezing or thawing failed (a frozen cgroup that cannot be is thawed again).
    #[error("failed to {action} cgroup {path}")]
    Freezer {
        /// `freeze` or `thaw`.
        action: &'static str,
        /// Its directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: libcgroups::common::AnyManagerError,
    },
    /// Its `cgroup.procs` files could not be read.
    #[error("failed to list the processes of cgroup {path}")]
    Pids {
        /// Cgroup path relative to each hierarchy.
        path: String,
        /// Cause.
        #[source]
        source: libcgroups::common::AnyManagerError,
    },
}

/// The `oom_kill` counter in the text of `memory.events` or `memory.oom_control`.
pub fn parse_oom_kills(text: &str) -> u64 {
    text.lines()
        .filter_map(|line| line.strip_prefix("oom_kill "))
        .find_map(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// How many processes of the cgroup the kernel OOM-killed (0 when unknown).
pub fn oom_kills(cgroups_path: &str) -> u64 {
    let Some(layout) = Layout::detect() else {
        return 0;
    };
    std::fs::read_to_string(layout.oom_file(cgroups_path))
        .map(|t| parse_oom_kills(&t))
        .unwrap_or(0)
}

/// Resource usage of a container, from its cgroup.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// Memory in use, bytes.
    pub memory_bytes: u64,
    /// Memory limit, bytes (0 when unlimited).
    pub memory_limit: u64,
    /// CPU time used, nanoseconds.
    pub cpu_nanos: u64,
    /// Tasks in the cgroup.
    pub pids: u64,
}

fn manager(id: &str) -> Option<libcgroups::common::AnyCgroupManager> {
    libcgroups::common::create_cgroup_manager(CgroupConfig {
        cgroup_path: PathBuf::from(cgroups_path(id)),
        systemd_cgroup: false,
        container_name: id.to_string(),
    })
    .ok()
}

/// Current usage of a container's cgroup.
pub fn usage(id: &str) -> Option<Usage> {
    let stats = manager(id)?.stats().ok()?;
    let limit = stats.memory.memory.limit;
    Some(Usage {
        memory_bytes: stats.memory.memory.usage,
        memory_limit: if limit >= i64::MAX as u64 / 2 {
            0
        } else {
            limit
        },
        cpu_nanos: stats.cpu.usage.usage_total,
        pids: stats.pids.current,
    })
}

/// Freezes every process of a container's cgroup; returns once the kernel
/// reports the cgroup frozen.
pub fn freeze(id: &str) -> Result<(), CgroupError> {
    set_frozen(Path::new(CGROUP_ROOT), &cgroups_path(id), true)
}

/// Thaws a container's cgroup.
pub fn thaw(id: &str) -> Result<(), CgroupError> {
    set_frozen(Path::new(CGROUP_ROOT), &cgroups_path(id), false)
}

/// Freezes (`frozen`) or thaws the cgroup `cgroups_path` of the hierarchies
/// mounted at `root`, v1 or v2 as the layout there says.
pub fn set_frozen(root: &Path, cgroups_path: &str, frozen: bool) -> Result<(), CgroupError> {
    let layout = libcgroups::common::get_cgroup_setup_with_root(root)
        .map(Layout::from)
        .map_err(|source| CgroupError::Layout {
            root: root.to_path_buf(),
            source,
        })?;
    let dir = layout.freezer_dir(root, cgroups_path);
    // libcgroups creates a missing v1 cgroup before writing to it: the
    // cgroup of a container that is gone must stay gone.
    if !dir.is_dir() {
        return Err(CgroupError::Missing { path: dir });
    }
    let manager = open(root, cgroups_path)?;
    let (state, action) = match frozen {
        true => (FreezerState::Frozen, "freeze"),
        false => (FreezerState::Thawed, "thaw"),
    };
    manager
        .freeze(state)
        .map_err(|source| CgroupError::Freezer {
            action,
            path: dir,
            source,
        })
}

/// Whether the cgroup `cgroups_path` under `root` is frozen now (`None`
/// when it does not exist or the layout is unknown).
pub fn is_frozen(root: &Path, cgroups_path: &str) -> Option<bool> {
    let layout = Layout::from(libcgroups::common::get_cgroup_setup_with_root(root).ok()?);
    let text = std::fs::read_to_string(layout.freezer_file(root, cgroups_path)).ok()?;
    Some(parse_frozen(layout, &text))
}

/// Whether the text of a freezer file says frozen: `FROZEN` in v1's
/// `freezer.state` (`FREEZING` is not there yet), `frozen 1` in v2's `cgroup.events`.
pub fn parse_frozen(layout: Layout, text: &str) -> bool {
    match layout {
        Layout::Unified => text.lines().any(|line| line.trim() == "frozen 1"),
        Layout::Legacy | Layout::Hybrid => text.trim() == "FROZEN",
    }
}

/// Host pids of the processes in a container's cgroup and its sub-cgroups
/// (its `cgroup.procs` files), in ascending order.
pub fn pids(id: &str) -> Result<Vec<i32>, CgroupError> {
    let path = cgroups_path(id);
    let manager = open(Path::new(CGROUP_ROOT), &path)?;
    let found = manager.get_all_pids().map_err(|source| CgroupError::Pids {
        path: path.clone(),
        source,
    })?;
    let mut pids: Vec<i32> = found.into_iter().map(|p| p.as_raw()).collect();
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

fn open(
    root: &Path,
    cgroups_path: &str,
) -> Result<libcgroups::common::AnyCgroupManager, CgroupError> {
    libcgroups::common::create_cgroup_manager_with_root(
        Some(root),
        CgroupConfig {
            cgroup_path: PathBuf::from(cgroups_path),
            systemd_cgroup: false,
            container_name: cgroups_path
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string(),
        },
    )
    .map_err(|source| CgroupError::Open {
        path: cgroups_path.to_string(),
        source,
    })
}

/// Removes a container's cgroup (best effort; gone already is fine).
pub fn remove(id: &str) {
    remove_path(&cgroups_path(id));
}

/// Removes the cgroup `cgroups_path` from the hierarchies under
/// [`CGROUP_ROOT`] (see [`remove_under`]).
pub fn remove_path(cgroups_path: &str) {
    if let Some(layout) = Layout::detect() {
        remove_under(Path::new(CGROUP_ROOT), layout, cgroups_path);
    }
}

/// Removes the cgroup `cgroups_path` from every hierarchy mounted under
/// `root`: processes still in it are killed (v2's `cgroup.kill`, else
/// SIGKILL to each pid of `cgroup.procs`), then its directory is removed,
/// tried again for about a second while the kernel still counts a dying
/// process in it. Children first: a nested cgroup would keep its parent.
///
/// It looks only where the directories can be, `<root>/<path>` on v2 and
/// `<root>/<controller>/<path>` on v1, instead of opening a libcgroups
/// manager, which reads `/proc/self/mountinfo` twice per controller (some
/// 16 reads of a file that grows with every container's mounts).
pub fn remove_under(root: &Path, layout: Layout, cgroups_path: &str) {
    for dir in dirs_under(root, layout, cgroups_path) {
        remove_tree(&dir);
    }
}

/// Where the cgroup `cgroups_path` can be under `root`: `<root>/<path>` on
/// v2, `<root>/<controller>/<path>` on v1.
fn dirs_under(root: &Path, layout: Layout, cgroups_path: &str) -> Vec<PathBuf> {
    let rel = cgroups_path.trim_start_matches('/');
    match layout {
        Layout::Unified => vec![root.join(rel)],
        // Controllers mounted together appear once as a directory
        // (`cpu,cpuacct`) and again as symbolic links (`cpu`): skip links.
        Layout::Legacy | Layout::Hybrid => std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path().join(rel))
            .collect(),
    }
}

/// Kills every process in the cgroup `cgroups_path` and its children, in
/// every hierarchy under [`CGROUP_ROOT`], without removing anything.
pub fn kill_path(cgroups_path: &str) {
    if let Some(layout) = Layout::detect() {
        kill_under(Path::new(CGROUP_ROOT), layout, cgroups_path);
    }
}

/// [`kill_path`] in the hierarchies mounted under `root`.
pub fn kill_under(root: &Path, layout: Layout, cgroups_path: &str) {
    for dir in dirs_under(root, layout, cgroups_path) {
        children_first(&dir, &kill_members);
    }
}

/// Visits the cgroup directory `dir` and every one below it, children
/// first (a nested cgroup would keep its parent); nothing when it is gone.
fn children_first(dir: &Path, visit: &dyn Fn(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            children_first(&entry.path(), visit);
        }
    }
    visit(dir);
}

fn remove_tree(dir: &Path) {
    // The usual case, an empty cgroup without children, goes at once; the
    // kernel refuses (EBUSY) one with processes or children in it.
    match std::fs::remove_dir(dir) {
        Ok(()) => return,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(_) => {}
    }
    children_first(dir, &remove_one);
}

/// Kills what is left in one cgroup directory, then removes it.
fn remove_one(dir: &Path) {
    kill_members(dir);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    let mut backoff = crate::container::Backoff::default();
    loop {
        match std::fs::remove_dir(dir) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
            _ => return,
        }
        if std::time::Instant::now() >= deadline {
            return;
        }
        backoff.sleep();
    }
}

/// SIGKILL to the processes of one cgroup directory (v2's `cgroup.kill`,
/// else each pid of `cgroup.procs`).
fn kill_members(dir: &Path) {
    let kill = dir.join("cgroup.kill");
    if kill.exists() {
        let _ = std::fs::write(&kill, "1");
    } else if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oom_kill_counter_is_read_from_v1_and_v2_files() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        let v2 = "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n";
        assert_eq!(parse_oom_kills(v1), 2);
        assert_eq!(parse_oom_kills(v2), 1);
        assert_eq!(parse_oom_kills(""), 0);
    }

    #[test]
    fn v1_and_v2_keep_the_counter_in_different_files() {
        let p = cgroups_path("c1");
        assert_eq!(
            Layout::Hybrid.oom_file(&p),
            PathBuf::from("/sys/fs/cgroup/memory/rcompose/c1/memory.oom_control")
        );
        assert_eq!(
            Layout::Unified.oom_file(&p),
            PathBuf::from("/sys/fs/cgroup/rcompose/c1/memory.events")
        );
    }

    #[test]
    fn v1_freezes_in_the_freezer_controller_and_v2_in_the_unified_hierarchy() {
        let root = Path::new(CGROUP_ROOT);
        let p = cgroups_path("c1");
        assert_eq!(
            Layout::Hybrid.freezer_file(root, &p),
            PathBuf::from("/sys/fs/cgroup/freezer/rcompose/c1/freezer.state")
        );
        assert_eq!(
            Layout::Unified.freezer_file(root, &p),
            PathBuf::from("/sys/fs/cgroup/rcompose/c1/cgroup.events")
        );
    }

    #[test]
    fn a_kill_reaches_every_process_of_the_cgroup_and_removes_nothing() {
        use std::os::unix::process::ExitStatusExt as _;
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let mut inside = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let mut outside = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let nested = r.join("memory/rcompose/c1/nested");
        std::fs::create_dir_all(&nested).unwrap();
        std::fs::write(nested.join("cgroup.procs"), format!("{}\n", inside.id())).unwrap();
        let other = r.join("memory/rcompose/c2");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("cgroup.procs"), format!("{}\n", outside.id())).unwrap();
        kill_under(r, Layout::Hybrid, &cgroups_path("c1"));
        assert_eq!(inside.wait().unwrap().signal(), Some(libc::SIGKILL));
        assert!(nested.is_dir());
        assert!(
            outside.try_wait().unwrap().is_none(),
            "another cgroup's process was killed"
        );
        outside.kill().unwrap();
        outside.wait().unwrap();
    }

    #[test]
    fn removal_takes_the_cgroup_from_every_hierarchy_and_nothing_else() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for dir in [
            "memory/rcompose/c1/nested",
            "memory/rcompose/c2",
            "cpu,cpuacct/rcompose/c1",
            "unified/rcompose/c1",
        ] {
            std::fs::create_dir_all(r.join(dir)).unwrap();
        }
        std::os::unix::fs::symlink("cpu,cpuacct", r.join("cpu")).unwrap();
        remove_under(r, Layout::Hybrid, &cgroups_path("c1"));
        for gone in [
            "memory/rcompose/c1",
            "cpu,cpuacct/rcompose/c1",
            "unified/rcompose/c1",
        ] {
            assert!(!r.join(gone).exists(), "{gone} is left");
        }
        assert!(r.join("memory/rcompose/c2").is_dir());
        assert!(r.join("cpu").is_symlink());
        // Gone already is fine.
        remove_under(r, Layout::Hybrid, &cgroups_path("c1"));

        // v2: only the cgroup in the one hierarchy at the root.
        std::fs::create_dir_all(r.join("rcompose/c1")).unwrap();
        std::fs::create_dir_all(r.join("memory/rcompose/c1")).unwrap();
        remove_under(r, Layout::Unified, &cgroups_path("c1"));
        assert!(!r.join("rcompose/c1").exists());
        assert!(r.join("memory/rcompose/c1").is_dir());
    }

    #[test]
    fn only_a_finished_freeze_reads_as_frozen() {
        assert!(parse_frozen(Layout::Hybrid, "FROZEN\n"));
        assert!(!parse_frozen(Layout::Legacy, "FREEZING\n"));
        assert!(!parse_frozen(Layout::Hybrid, "THAWED\n"));
        assert!(parse_frozen(Layout::Unified, "populated 1\nfrozen 1\n"));
        assert!(!parse_frozen(Layout::Unified, "populated 1\nfrozen 0\n"));
    }
}
