//! Cgroups of containers, v1 and v2 alike: which layout the host has, where a
//! container's cgroup lives, its OOM-kill count, resource usage, and removal.
//!
//! Limits are applied by the OCI runtime layer from the spec's
//! `linux.resources`; this module only reads and cleans up. Every container's
//! cgroup is `<hierarchy>/rcompose/<id>` (`cgroups_path` `/rcompose/<id>`).

use std::path::{Path, PathBuf};

use libcgroups::common::{CgroupConfig, CgroupManager as _, CgroupSetup};

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
        match libcgroups::common::get_cgroup_setup().ok()? {
            CgroupSetup::Legacy => Some(Layout::Legacy),
            CgroupSetup::Hybrid => Some(Layout::Hybrid),
            CgroupSetup::Unified => Some(Layout::Unified),
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

/// Removes a container's cgroup (best effort; gone already is fine).
pub fn remove(id: &str) {
    if let Some(manager) = manager(id) {
        let _ = manager.remove();
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
}
