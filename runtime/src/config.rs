//! What a caller asks the runtime to run: [`ContainerConfig`], the
//! service-level settings of one container, independent of stacks.
//!
//! The runtime turns it, together with the image's own config, into an OCI
//! runtime spec (`spec` module). Every field is optional in the sense Docker
//! gives it: `None` / empty means "use the image's value or Docker's default".

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Settings of one container, as `docker run` flags would give them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerConfig {
    /// Image reference the container runs (already pulled).
    pub image: String,
    /// Overrides the image's Entrypoint when `Some` (an empty list clears it).
    pub entrypoint: Option<Vec<String>>,
    /// Overrides the image's Cmd when `Some`.
    pub command: Option<Vec<String>>,
    /// Extra environment, applied over the image's Env (`KEY=VALUE` semantics).
    pub env: BTreeMap<String, String>,
    /// Overrides the image's WorkingDir.
    pub working_dir: Option<String>,
    /// `user[:group]`, names or numbers, resolved in the image's /etc/passwd.
    pub user: Option<String>,
    /// Supplementary groups (names or numbers).
    pub group_add: Vec<String>,
    /// Container hostname (defaults to the first 12 characters of the id).
    pub hostname: Option<String>,
    /// Domain name (UTS).
    pub domainname: Option<String>,
    /// Labels recorded with the container.
    pub labels: BTreeMap<String, String>,
    /// Root filesystem read-only.
    pub read_only: bool,
    /// Lifts the default capability set, seccomp, masked paths and device rules.
    pub privileged: bool,
    /// Capabilities added to Docker's default set (`NET_ADMIN` or `CAP_NET_ADMIN`, or `ALL`).
    pub cap_add: Vec<String>,
    /// Capabilities removed from the set (`ALL` drops everything not added).
    pub cap_drop: Vec<String>,
    /// `security_opt` entries (`no-new-privileges`, `no-new-privileges:true`, `seccomp=unconfined`).
    pub security_opt: Vec<String>,
    /// Run the built-in init as PID 1.
    pub init: bool,
    /// Signal sent by `stop` (`SIGTERM` when unset and the image names none).
    pub stop_signal: Option<String>,
    /// Grace period between the stop signal and SIGKILL (10 s when unset).
    pub stop_grace_period: Option<Duration>,
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    /// Memory + swap limit in bytes.
    pub memory_swap: Option<i64>,
    /// CPU quota in CPUs (`1.5`).
    pub cpus: Option<f64>,
    /// Relative CPU weight (Docker's 2..262144 scale).
    pub cpu_shares: Option<u64>,
    /// Maximum number of tasks in the container's cgroup.
    pub pids_limit: Option<i64>,
    /// Resource limits: name (`nofile`, `nproc`, …) → (soft, hard).
    pub ulimits: BTreeMap<String, (u64, u64)>,
    /// Namespaced sysctls (`net.*`, `kernel.shm*`, `kernel.msg*`, `kernel.sem`, `fs.mqueue.*`).
    pub sysctls: BTreeMap<String, String>,
    /// Size of /dev/shm in bytes (64 MiB when unset).
    pub shm_size: Option<u64>,
    /// Extra mounts (binds, volumes, tmpfs), already resolved to host sources.
    pub mounts: Vec<MountSpec>,
    /// Join this network namespace (a path like `/run/netns/x`) instead of a new one.
    pub netns_path: Option<PathBuf>,
    /// Use the host's network namespace.
    pub network_host: bool,
    /// Allocate a terminal for the process.
    pub tty: bool,
    /// Keep stdin open.
    pub stdin_open: bool,
    /// Restart policy.
    pub restart: RestartPolicy,
    /// Healthcheck, `None` when the image's (if any) applies; see [`Healthcheck::disable`].
    pub healthcheck: Option<Healthcheck>,
    /// Log rotation: maximum size of one log file in bytes (`None`: no rotation).
    pub log_max_size: Option<u64>,
    /// Log rotation: number of files kept, current included.
    pub log_max_files: Option<u32>,
}

/// Marker in [`MountSpec::options`]: before the container is created, copy the
/// image's content at the target into the (bind) source while that source is an
/// empty directory. The runtime removes it from the options it mounts with.
pub const COPY_UP_OPTION: &str = "copy-up";

/// One mount of a container, in OCI terms.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Path inside the container.
    pub target: String,
    /// Host path (bind) or device name (`tmpfs`).
    pub source: String,
    /// Filesystem type (`bind`, `tmpfs`, …).
    pub kind: String,
    /// Mount options (`ro`, `rbind`, `size=65536k`, `mode=1777`, …, and [`COPY_UP_OPTION`]).
    pub options: Vec<String>,
}

/// When the monitor restarts an exited container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "name")]
pub enum RestartPolicy {
    /// Never.
    #[default]
    No,
    /// Always, unless stopped by the user.
    Always,
    /// When the exit code is not zero, at most `max_retries` times (unlimited when `None`).
    OnFailure {
        /// Upper bound on restarts.
        max_retries: Option<u32>,
    },
    /// Like `always`, but not after the user stopped it, even across host reboots.
    UnlessStopped,
}

/// A healthcheck, in Docker's terms.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Healthcheck {
    /// `["CMD", …]`, `["CMD-SHELL", "…"]` or `["NONE"]`.
    pub test: Vec<String>,
    /// Time between checks (30 s when unset).
    pub interval: Option<Duration>,
    /// Time one check may take (30 s when unset).
    pub timeout: Option<Duration>,
    /// Consecutive failures that make the container unhealthy (3 when unset).
    pub retries: Option<u32>,
    /// Grace period during which failures do not count.
    pub start_period: Option<Duration>,
    /// Interval between checks during the start period (5 s when unset).
    pub start_interval: Option<Duration>,
}

impl Healthcheck {
    /// Whether this healthcheck switches checking off (`test: ["NONE"]`).
    pub fn disable(&self) -> bool {
        self.test.first().map(String::as_str) == Some("NONE")
    }
}
