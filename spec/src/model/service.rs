//! A service of the stack: every property of the Compose Specification's
//! `service` definition, with short syntaxes already expanded.
//!
//! Invariant: each field holds the normalized long form (see the field types), so a
//! serialized [`Service`] reads back to an equal value, and serialization prints
//! the shapes `docker compose config --format json` prints.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::build::Build;
use super::bytes::{self, ByteSize};
use super::deploy::{Deploy, DeviceRequest, GpusSchema};
use super::duration::{self, Duration};
use super::flex::{
    self, BoolOrString, CommandSchema, Extensions, IntOrString, ListOrDict, ListOrNamedMap,
    NumberOrString, ScalarList, ScalarMap, ShortOrLong, ShortOrLongList, StringOrList,
};
use super::health::{Develop, Healthcheck, HooksSchema, ServiceHook};
use super::host::{
    BlkioConfig, CredentialSpec, Device, EnvFile, EnvFilesSchema, ExtraHostsSchema, Logging,
    Ulimit, UlimitsSchema,
};
use super::ports::{PortMapping, PortsSchema};
use super::relations::{DependsOn, Extends, FileReference, Provider, ServiceModel, ServiceNetwork};
use super::volumes::{ServiceVolume, ServiceVolumesSchema};

/// One service of a stack, normalized.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct Service {
    /// Annotations of the container.
    #[serde(
        deserialize_with = "flex::list_or_dict",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ListOrDict")]
    pub annotations: IndexMap<String, Option<String>>,
    /// Whether `up` attaches to this service's output.
    #[serde(
        deserialize_with = "flex::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<BoolOrString>")]
    pub attach: Option<bool>,
    /// How the image is built.
    #[serde(
        deserialize_with = "super::build::build",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<ShortOrLong<Build>>")]
    pub build: Option<Build>,
    /// Block IO limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blkio_config: Option<BlkioConfig>,
    /// Capabilities added.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// Capabilities dropped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// Cgroup namespace: `host` or `private`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["host", "private"]))]
    pub cgroup: Option<String>,
    /// Parent cgroup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_parent: Option<String>,
    /// Command, overriding the image's `CMD`.
    #[serde(
        deserialize_with = "flex::command",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "CommandSchema")]
    pub command: Option<Vec<String>>,
    /// Configs granted to the service.
    #[serde(
        deserialize_with = "super::relations::file_references",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "ShortOrLongList<FileReference>")]
    pub configs: Vec<FileReference>,
    /// Fixed container name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// Usable CPUs (Windows).
    #[serde(
        deserialize_with = "flex::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<IntOrString>")]
    pub cpu_count: Option<u64>,
    /// Usable CPU percentage (Windows).
    #[serde(
        deserialize_with = "flex::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<IntOrString>")]
    pub cpu_percent: Option<u64>,
    /// Relative CPU weight.
    #[serde(
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<NumberOrString>")]
    pub cpu_shares: Option<i64>,
    /// CFS quota in microseconds.
    #[serde(
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<NumberOrString>")]
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds.
    #[serde(
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<NumberOrString>")]
    pub cpu_period: Option<i64>,
    /// Real-time period in microseconds.
    #[serde(
        deserialize_with = "duration::opt_micros",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<NumberOrString>")]
    pub cpu_rt_period: Option<i64>,
    /// Real-time runtime in microseconds.
    #[serde(
        deserialize_with = "duration::opt_micros",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<NumberOrString>")]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs (fractional).
    #[serde(
        deserialize_with = "flex::opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<NumberOrString>")]
    pub cpus: Option<f64>,
    /// CPUs allowed (`0-3`, `0,1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset: Option<String>,
    /// Windows credential spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_spec: Option<CredentialSpec>,
    /// Services this one depends on.
    #[serde(
        deserialize_with = "super::relations::depends_on",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ListOrNamedMap<DependsOn, false>")]
    pub depends_on: IndexMap<String, DependsOn>,
    /// Deployment settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Deploy>,
    /// Development (watch) settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub develop: Option<Develop>,
    /// Device cgroup rules.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_cgroup_rules: Vec<String>,
    /// Host devices.
    #[serde(
        deserialize_with = "super::host::devices",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "ShortOrLongList<Device>")]
    pub devices: Vec<Device>,
    /// DNS servers.
    #[serde(
        deserialize_with = "flex::string_or_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "StringOrList")]
    pub dns: Vec<String>,
    /// Resolver options.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_opt: Vec<String>,
    /// DNS search domains.
    #[serde(
        deserialize_with = "flex::string_or_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "StringOrList")]
    pub dns_search: Vec<String>,
    /// Domain name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    /// Entrypoint, overriding the image's.
    #[serde(
        deserialize_with = "flex::command",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "CommandSchema")]
    pub entrypoint: Option<Vec<String>>,
    /// Environment files.
    #[serde(
        deserialize_with = "super::host::env_files",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "EnvFilesSchema")]
    pub env_file: Vec<EnvFile>,
    /// Environment variables; `None` means "take it from the host environment".
    #[serde(
        deserialize_with = "flex::list_or_dict",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ListOrDict")]
    pub environment: IndexMap<String, Option<String>>,
    /// Ports exposed without publishing.
    #[serde(
        deserialize_with = "flex::string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "ScalarList")]
    pub expose: Vec<String>,
    /// Base service.
    #[serde(
        deserialize_with = "super::relations::extends",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<ShortOrLong<Extends>>")]
    pub extends: Option<Extends>,
    /// Links to containers outside the stack.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub external_links: Vec<String>,
    /// Extra `/etc/hosts` entries: host → addresses.
    #[serde(
        deserialize_with = "super::host::extra_hosts",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ExtraHostsSchema")]
    pub extra_hosts: IndexMap<String, Vec<String>>,
    /// GPU requests.
    #[serde(
        deserialize_with = "super::deploy::gpus",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "GpusSchema")]
    pub gpus: Vec<DeviceRequest>,
    /// Extra groups of the container user.
    #[serde(
        deserialize_with = "flex::string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "ScalarList")]
    pub group_add: Vec<String>,
    /// Health check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// Host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Image reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Run an init process as PID 1.
    #[serde(
        deserialize_with = "flex::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<BoolOrString>")]
    pub init: Option<bool>,
    /// IPC namespace mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipc: Option<String>,
    /// Isolation technology.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    /// Container labels.
    #[serde(
        deserialize_with = "flex::list_or_dict",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ListOrDict")]
    pub labels: IndexMap<String, Option<String>>,
    /// Files of labels.
    #[serde(
        deserialize_with = "flex::string_or_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "StringOrList")]
    pub label_file: Vec<String>,
    /// Legacy links (`service[:alias]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// Logging driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<Logging>,
    /// MAC address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// Memory limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_limit: Option<ByteSize>,
    /// Memory soft limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_reservation: Option<ByteSize>,
    /// Swappiness (0–100).
    #[serde(
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<IntOrString>")]
    pub mem_swappiness: Option<i64>,
    /// Memory plus swap limit in bytes; `-1` is unlimited.
    #[serde(
        deserialize_with = "bytes::opt_signed_size",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<NumberOrString>")]
    pub memswap_limit: Option<i64>,
    /// Models used, by top-level model name.
    #[serde(
        deserialize_with = "super::relations::service_models",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ListOrNamedMap<ServiceModel, true>")]
    pub models: IndexMap<String, Option<ServiceModel>>,
    /// Network mode (`bridge`, `host`, `none`, `service:x`, `container:x`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    /// Networks joined, by top-level network name; `None` means default settings.
    #[serde(
        deserialize_with = "super::relations::service_networks",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ListOrNamedMap<ServiceNetwork, true>")]
    pub networks: IndexMap<String, Option<ServiceNetwork>>,
    /// Disable the OOM killer.
    #[serde(
        deserialize_with = "flex::bool_",
        skip_serializing_if = "std::ops::Not::not"
    )]
    #[schemars(with = "BoolOrString")]
    pub oom_kill_disable: bool,
    /// OOM score adjustment (-1000–1000).
    #[serde(
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<IntOrString>")]
    pub oom_score_adj: Option<i64>,
    /// PID namespace mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    /// Process count limit; `-1` is unlimited.
    #[serde(
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<NumberOrString>")]
    pub pids_limit: Option<i64>,
    /// Target platform.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Published ports, one entry per container port.
    #[serde(
        deserialize_with = "super::ports::ports",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "PortsSchema")]
    pub ports: Vec<PortMapping>,
    /// Hooks run after the container starts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "HooksSchema")]
    pub post_start: Vec<ServiceHook>,
    /// Hooks run before the container stops.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "HooksSchema")]
    pub pre_stop: Vec<ServiceHook>,
    /// Run privileged.
    #[serde(
        deserialize_with = "flex::bool_",
        skip_serializing_if = "std::ops::Not::not"
    )]
    #[schemars(with = "BoolOrString")]
    pub privileged: bool,
    /// Profiles that enable this service.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// External provider managing this service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// Image pull policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("pattern" = "always|never|build|if_not_present|missing|refresh|daily|weekly|every_([0-9]+[wdhms])+"))]
    pub pull_policy: Option<String>,
    /// Refresh interval for `pull_policy: refresh`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_refresh_after: Option<String>,
    /// Read-only root filesystem.
    #[serde(
        deserialize_with = "flex::bool_",
        skip_serializing_if = "std::ops::Not::not"
    )]
    #[schemars(with = "BoolOrString")]
    pub read_only: bool,
    /// Restart policy (`no`, `always`, `on-failure[:n]`, `unless-stopped`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// OCI runtime.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Number of replicas.
    #[serde(
        deserialize_with = "flex::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<IntOrString>")]
    pub scale: Option<u64>,
    /// Secrets granted to the service.
    #[serde(
        deserialize_with = "super::relations::file_references",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "ShortOrLongList<FileReference>")]
    pub secrets: Vec<FileReference>,
    /// Security options.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// Size of `/dev/shm`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<ByteSize>,
    /// Keep stdin open.
    #[serde(
        deserialize_with = "flex::bool_",
        skip_serializing_if = "std::ops::Not::not"
    )]
    #[schemars(with = "BoolOrString")]
    pub stdin_open: bool,
    /// Time between the stop signal and SIGKILL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<Duration>,
    /// Stop signal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Storage driver options.
    #[serde(
        deserialize_with = "flex::scalar_map",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ScalarMap")]
    pub storage_opt: IndexMap<String, String>,
    /// Kernel parameters.
    #[serde(
        deserialize_with = "flex::list_or_dict",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ListOrDict")]
    pub sysctls: IndexMap<String, Option<String>>,
    /// Tmpfs mounts (`/path[:options]`).
    #[serde(
        deserialize_with = "flex::string_or_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "StringOrList")]
    pub tmpfs: Vec<String>,
    /// Allocate a TTY.
    #[serde(
        deserialize_with = "flex::bool_",
        skip_serializing_if = "std::ops::Not::not"
    )]
    #[schemars(with = "BoolOrString")]
    pub tty: bool,
    /// Resource limits, by resource name.
    #[serde(
        deserialize_with = "super::host::ulimits",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "UlimitsSchema")]
    pub ulimits: IndexMap<String, Ulimit>,
    /// Bind-mount the engine API socket.
    #[serde(
        deserialize_with = "flex::bool_",
        skip_serializing_if = "std::ops::Not::not"
    )]
    #[schemars(with = "BoolOrString")]
    pub use_api_socket: bool,
    /// User (`name` or `uid[:gid]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// User namespace mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userns_mode: Option<String>,
    /// UTS namespace mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uts: Option<String>,
    /// Mounts.
    #[serde(
        deserialize_with = "super::volumes::service_volumes",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "ServiceVolumesSchema")]
    pub volumes: Vec<ServiceVolume>,
    /// Mount the volumes of other services or containers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes_from: Vec<String>,
    /// Working directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}
