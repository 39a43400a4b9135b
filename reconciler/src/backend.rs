//! The seams between the reconciler and the host: one trait per kind of
//! object (containers, networks, volumes, images), the DTOs they exchange,
//! and the labels that mark an object as ours.
//!
//! Invariants: every listing is filtered by labels, so objects without our
//! labels are never seen and so never touched; the traits take `&self` so
//! that an executor can share one backend between parallel operations.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Labels as stored on host objects.
pub type Labels = BTreeMap<String, String>;

/// Project the object belongs to.
pub const LABEL_PROJECT: &str = "io.rcompose.project";
/// Service a container runs.
pub const LABEL_SERVICE: &str = "io.rcompose.service";
/// Replica number of a container (1-based).
pub const LABEL_REPLICA: &str = "io.rcompose.replica";
/// Config hash of the service a container was created from.
pub const LABEL_CONFIG_HASH: &str = "io.rcompose.config-hash";
/// Digest of the content of the configs and secrets a container was
/// created with ([`crate::desired::files_digest`]); absent when the
/// service has none or the caller could not read them.
pub const LABEL_FILES_DIGEST: &str = "io.rcompose.files-digest";
/// Key of a network in the stack file.
pub const LABEL_NETWORK: &str = "io.rcompose.network";
/// Key of a volume in the stack file.
pub const LABEL_VOLUME: &str = "io.rcompose.volume";
/// Compose's twin of [`LABEL_PROJECT`].
pub const COMPOSE_PROJECT: &str = "com.docker.compose.project";
/// Compose's twin of [`LABEL_SERVICE`].
pub const COMPOSE_SERVICE: &str = "com.docker.compose.service";
/// Compose's twin of [`LABEL_REPLICA`].
pub const COMPOSE_CONTAINER_NUMBER: &str = "com.docker.compose.container-number";
/// Compose's twin of [`LABEL_CONFIG_HASH`].
pub const COMPOSE_CONFIG_HASH: &str = "com.docker.compose.config-hash";
/// Compose's marker of `run` containers; always `False` for ours.
pub const COMPOSE_ONEOFF: &str = "com.docker.compose.oneoff";
/// Compose's twin of [`LABEL_NETWORK`].
pub const COMPOSE_NETWORK: &str = "com.docker.compose.network";
/// Compose's twin of [`LABEL_VOLUME`].
pub const COMPOSE_VOLUME: &str = "com.docker.compose.volume";

/// The selector that finds every object of `project`.
pub fn project_selector(project: &str) -> Labels {
    Labels::from([(LABEL_PROJECT.to_string(), project.to_string())])
}

/// Labels of a container: ours and Compose's.
pub fn container_labels(project: &str, service: &str, replica: u32, config_hash: &str) -> Labels {
    let replica = replica.to_string();
    [
        (LABEL_PROJECT, project),
        (LABEL_SERVICE, service),
        (LABEL_REPLICA, replica.as_str()),
        (LABEL_CONFIG_HASH, config_hash),
        (COMPOSE_PROJECT, project),
        (COMPOSE_SERVICE, service),
        (COMPOSE_CONTAINER_NUMBER, replica.as_str()),
        (COMPOSE_CONFIG_HASH, config_hash),
        (COMPOSE_ONEOFF, "False"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Labels of a network (`kind_labels = (LABEL_NETWORK, COMPOSE_NETWORK)`) or
/// volume, keyed by the object's key in the stack file.
pub fn resource_labels(project: &str, kind_labels: (&str, &str), key: &str) -> Labels {
    [
        (LABEL_PROJECT, project),
        (COMPOSE_PROJECT, project),
        (kind_labels.0, key),
        (kind_labels.1, key),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Whether `labels` carries every entry of `selector`.
pub fn matches(labels: &Labels, selector: &Labels) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Life-cycle state of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerStatus {
    /// Created, not running yet.
    Created,
    /// Its process runs.
    Running,
    /// Exited; its monitor is about to start it again.
    Restarting,
    /// Frozen.
    Paused,
    /// Exited and stays so.
    Exited,
    /// Its monitor vanished without recording an exit.
    Dead,
}

impl ContainerStatus {
    /// Whether a process may be running (so a stop is needed before removal).
    pub fn is_live(self) -> bool {
        matches!(self, Self::Running | Self::Restarting | Self::Paused)
    }
}

/// Result of a container's healthcheck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// In its start period, or no check has passed yet.
    Starting,
    /// The last check passed.
    Healthy,
    /// Too many checks failed in a row.
    Unhealthy,
}

/// A container of the project as found on the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedContainer {
    /// Container name (`<project>-<service>-<n>`).
    pub name: String,
    /// Service, from [`LABEL_SERVICE`].
    pub service: String,
    /// Replica number, from [`LABEL_REPLICA`].
    pub replica: u32,
    /// Config hash, from [`LABEL_CONFIG_HASH`].
    pub config_hash: String,
    /// Digest of the image the container was created from, when known.
    pub image_digest: Option<String>,
    /// Life-cycle state.
    pub status: ContainerStatus,
    /// Healthcheck result; `None` when the container has no healthcheck.
    #[serde(default)]
    pub health: Option<Health>,
    /// Exit code of the last run, when it has exited.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Full names of the networks it is attached to.
    pub networks: Vec<String>,
    /// All its labels.
    pub labels: Labels,
    /// The service projection it was created from, when the backend kept it;
    /// lets the planner name the fields that changed instead of the hash.
    pub config: Option<serde_json::Value>,
}

impl ObservedContainer {
    /// Digest of its configs' and secrets' content, from
    /// [`LABEL_FILES_DIGEST`]; `None` for a container made without one.
    pub fn files_digest(&self) -> Option<&str> {
        self.labels.get(LABEL_FILES_DIGEST).map(String::as_str)
    }
}

/// What a container is created from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Container name.
    pub name: String,
    /// Service.
    pub service: String,
    /// Replica number.
    pub replica: u32,
    /// Image reference.
    pub image: String,
    /// Config hash of the service.
    pub config_hash: String,
    /// The service projection the hash is computed over.
    pub config: serde_json::Value,
    /// Full names of the networks to attach.
    pub networks: Vec<String>,
    /// Digest of the content of its configs and secrets, when the caller
    /// computed one; also in `labels` as [`LABEL_FILES_DIGEST`].
    #[serde(default)]
    pub files_digest: Option<String>,
    /// Labels, from [`container_labels`] (plus [`LABEL_FILES_DIGEST`]).
    pub labels: Labels,
}

/// The settings of a network that the planner compares.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// Driver (`None` for the default bridge).
    pub driver: Option<String>,
    /// Driver options.
    pub driver_opts: BTreeMap<String, String>,
    /// No outside connectivity.
    pub internal: bool,
    /// IPv6 addressing.
    pub enable_ipv6: bool,
    /// Subnets of the `ipam.config` entries.
    pub subnets: Vec<String>,
}

/// A network of the project as found on the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedNetwork {
    /// Full name.
    pub name: String,
    /// Labels.
    pub labels: Labels,
    /// Settings.
    pub config: NetworkConfig,
    /// Why the network cannot carry traffic on the host although its
    /// record is there (`bridge rc-1a2b3c4d5e6f is missing`); `None` when it
    /// is usable. The planner recreates a broken network like a changed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broken: Option<String>,
}

/// What a network is created from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// Full name.
    pub name: String,
    /// Labels.
    pub labels: Labels,
    /// Settings.
    pub config: NetworkConfig,
}

/// The settings of a volume that the planner compares.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VolumeConfig {
    /// Driver (`None` for `local`).
    pub driver: Option<String>,
    /// Driver options.
    pub driver_opts: BTreeMap<String, String>,
}

/// A volume of the project as found on the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedVolume {
    /// Full name.
    pub name: String,
    /// Labels.
    pub labels: Labels,
    /// Settings.
    pub config: VolumeConfig,
}

/// What a volume is created from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeSpec {
    /// Full name.
    pub name: String,
    /// Labels.
    pub labels: Labels,
    /// Settings.
    pub config: VolumeConfig,
}

/// Why a backend call failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The object does not exist.
    #[error("{kind} {name} not found")]
    NotFound {
        /// `container`, `network`, `volume` or `image`.
        kind: &'static str,
        /// Its name or reference.
        name: String,
    },
    /// The object exists already.
    #[error("{kind} {name} already exists")]
    Exists {
        /// `container`, `network`, `volume` or `image`.
        kind: &'static str,
        /// Its name or reference.
        name: String,
    },
    /// The backend failed while doing `action` on `target`.
    #[error("failed to {action} {target}")]
    Failed {
        /// What we were doing (`create container`).
        action: String,
        /// Object concerned.
        target: String,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Containers: list by labels, create, start, stop, remove.
pub trait ContainerBackend {
    /// Containers carrying every label of `selector`.
    fn list_containers(&self, selector: &Labels) -> Result<Vec<ObservedContainer>, BackendError>;
    /// Creates a container (not started).
    fn create_container(&self, spec: &ContainerSpec) -> Result<(), BackendError>;
    /// Starts a created or exited container.
    fn start_container(&self, name: &str) -> Result<(), BackendError>;
    /// Stops a container, killing it after `timeout` (backend default when `None`).
    fn stop_container(&self, name: &str, timeout: Option<Duration>) -> Result<(), BackendError>;
    /// Removes a stopped container; its anonymous volumes too when
    /// `volumes` (else they are kept for the next container of that name).
    fn remove_container(&self, name: &str, volumes: bool) -> Result<(), BackendError>;
    /// The current state of one container (status, health, exit code).
    fn inspect_container(&self, name: &str) -> Result<ObservedContainer, BackendError>;
}

/// Networks: list by labels, create, remove.
pub trait NetworkBackend {
    /// Networks carrying every label of `selector`.
    fn list_networks(&self, selector: &Labels) -> Result<Vec<ObservedNetwork>, BackendError>;
    /// Creates a network.
    fn create_network(&self, spec: &NetworkSpec) -> Result<(), BackendError>;
    /// Removes a network no running container is attached to; stopped
    /// containers still attached to it are detached from it.
    fn remove_network(&self, name: &str) -> Result<(), BackendError>;
}

/// Volumes: list by labels, create, remove.
pub trait VolumeBackend {
    /// Volumes carrying every label of `selector`.
    fn list_volumes(&self, selector: &Labels) -> Result<Vec<ObservedVolume>, BackendError>;
    /// Creates a volume.
    fn create_volume(&self, spec: &VolumeSpec) -> Result<(), BackendError>;
    /// Removes a volume and its data.
    fn remove_volume(&self, name: &str) -> Result<(), BackendError>;
}

/// Images: local digest lookup and pull.
pub trait ImageBackend {
    /// Digest of the local image `reference`, `None` when it is not present.
    fn image_digest(&self, reference: &str) -> Result<Option<String>, BackendError>;
    /// Pulls `reference` and returns its digest.
    fn pull_image(&self, reference: &str) -> Result<String, BackendError>;
}

/// Everything of one project on the host, read in one pass.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ObservedState {
    /// Containers of the project.
    pub containers: Vec<ObservedContainer>,
    /// Networks of the project (ours only: external ones carry no labels).
    pub networks: Vec<ObservedNetwork>,
    /// Volumes of the project.
    pub volumes: Vec<ObservedVolume>,
    /// Local digest of each image reference asked about (`None`: absent).
    pub images: BTreeMap<String, Option<String>>,
}

/// Reads the state of `project` from `host`, with the local digest of each
/// reference in `images`.
pub fn observe<H>(host: &H, project: &str, images: &[String]) -> Result<ObservedState, BackendError>
where
    H: ContainerBackend + NetworkBackend + VolumeBackend + ImageBackend,
{
    let selector = project_selector(project);
    let mut state = ObservedState {
        containers: host.list_containers(&selector)?,
        networks: host.list_networks(&selector)?,
        volumes: host.list_volumes(&selector)?,
        images: BTreeMap::new(),
    };
    for reference in images {
        state
            .images
            .insert(reference.clone(), host.image_digest(reference)?);
    }
    state
        .containers
        .sort_by(|a, b| (a.service.as_str(), a.replica).cmp(&(b.service.as_str(), b.replica)));
    state.networks.sort_by(|a, b| a.name.cmp(&b.name));
    state.volumes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_labels_carry_ours_and_the_compose_twins() {
        let labels = container_labels("shop", "web", 2, "abc");
        assert_eq!(labels[LABEL_REPLICA], "2");
        assert_eq!(labels[COMPOSE_CONTAINER_NUMBER], "2");
        assert_eq!(labels[COMPOSE_CONFIG_HASH], "abc");
        assert_eq!(labels[COMPOSE_ONEOFF], "False");
        assert!(matches(&labels, &project_selector("shop")));
        assert!(!matches(&labels, &project_selector("blog")));
    }

    #[test]
    fn only_running_restarting_and_paused_containers_need_a_stop() {
        assert!(ContainerStatus::Running.is_live());
        assert!(ContainerStatus::Paused.is_live());
        assert!(!ContainerStatus::Exited.is_live());
        assert!(!ContainerStatus::Created.is_live());
    }
}
