//! A strict in-memory host implementing every backend trait, for tests of
//! observe → plan → apply without root.
//!
//! Invariants: every call is recorded as a typed [`Call`]; a call that makes
//! no sense on the current state (starting a container that does not exist,
//! removing a running one, creating a container on a missing network or
//! image) panics, because a correct executor never makes it; the failure
//! injected with [`FakeHost::fail_on_call`] changes nothing on the host.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::backend::{
    BackendError, ContainerBackend, ContainerSpec, ContainerStatus, ImageBackend, Labels,
    NetworkBackend, NetworkSpec, ObservedContainer, ObservedNetwork, ObservedVolume, VolumeBackend,
    VolumeSpec, matches,
};

/// One call made to the fake host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `list_containers`.
    ListContainers,
    /// `list_networks`.
    ListNetworks,
    /// `list_volumes`.
    ListVolumes,
    /// `image_digest` of a reference.
    ImageDigest(String),
    /// `create_container` of a name.
    CreateContainer(String),
    /// `start_container`.
    StartContainer(String),
    /// `stop_container`.
    StopContainer(String),
    /// `remove_container`.
    RemoveContainer(String),
    /// `create_network`.
    CreateNetwork(String),
    /// `remove_network`.
    RemoveNetwork(String),
    /// `create_volume`.
    CreateVolume(String),
    /// `remove_volume`.
    RemoveVolume(String),
    /// `pull_image`.
    PullImage(String),
}

#[derive(Debug, Default)]
struct State {
    containers: BTreeMap<String, ObservedContainer>,
    networks: BTreeMap<String, ObservedNetwork>,
    volumes: BTreeMap<String, ObservedVolume>,
    images: BTreeMap<String, String>,
    registry: BTreeMap<String, String>,
    calls: Vec<Call>,
    mutations: usize,
    fail_on: Option<usize>,
}

/// The in-memory host.
#[derive(Debug, Default)]
pub struct FakeHost {
    state: Mutex<State>,
}

impl FakeHost {
    /// An empty host with an empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the `n`th mutating call (1-based, counted from now on) fail.
    pub fn fail_on_call(&self, n: usize) {
        let mut s = self.lock();
        s.fail_on = Some(s.mutations + n);
    }

    /// Offers `reference` with `digest` for pulling.
    pub fn publish(&self, reference: &str, digest: &str) {
        self.lock().registry.insert(reference.into(), digest.into());
    }

    /// Puts `reference` in the local store, as if pulled earlier.
    pub fn add_image(&self, reference: &str, digest: &str) {
        self.lock().images.insert(reference.into(), digest.into());
    }

    /// Puts a container on the host, as if created earlier.
    pub fn add_container(&self, container: ObservedContainer) {
        self.lock()
            .containers
            .insert(container.name.clone(), container);
    }

    /// Puts a network on the host, as if created earlier.
    pub fn add_network(&self, network: ObservedNetwork) {
        self.lock().networks.insert(network.name.clone(), network);
    }

    /// Puts a volume on the host, as if created earlier.
    pub fn add_volume(&self, volume: ObservedVolume) {
        self.lock().volumes.insert(volume.name.clone(), volume);
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The calls that change the host, in order.
    pub fn mutating_calls(&self) -> Vec<Call> {
        self.calls().into_iter().filter(is_mutating).collect()
    }

    /// The container called `name`, if any.
    pub fn container(&self, name: &str) -> Option<ObservedContainer> {
        self.lock().containers.get(name).cloned()
    }

    /// Records `call`; for a mutating call, `Err` when it is the one to fail.
    fn record(&self, call: Call) -> Result<MutexGuard<'_, State>, BackendError> {
        let mut s = self.lock();
        let mutating = is_mutating(&call);
        s.calls.push(call.clone());
        if mutating {
            s.mutations += 1;
            if s.fail_on == Some(s.mutations) {
                return Err(BackendError::Failed {
                    action: format!("{call:?}"),
                    target: "fake host".into(),
                    source: "injected failure".into(),
                });
            }
        }
        Ok(s)
    }
}

fn is_mutating(call: &Call) -> bool {
    !matches!(
        call,
        Call::ListContainers | Call::ListNetworks | Call::ListVolumes | Call::ImageDigest(_)
    )
}

impl ContainerBackend for FakeHost {
    fn list_containers(&self, selector: &Labels) -> Result<Vec<ObservedContainer>, BackendError> {
        let s = self.record(Call::ListContainers)?;
        Ok(s.containers
            .values()
            .filter(|c| matches(&c.labels, selector))
            .cloned()
            .collect())
    }

    fn create_container(&self, spec: &ContainerSpec) -> Result<(), BackendError> {
        let mut s = self.record(Call::CreateContainer(spec.name.clone()))?;
        assert!(
            !s.containers.contains_key(&spec.name),
            "create of existing container {}",
            spec.name
        );
        for net in &spec.networks {
            assert!(
                s.networks.contains_key(net),
                "container {} created on missing network {net}",
                spec.name
            );
        }
        let Some(digest) = s.images.get(&spec.image).cloned() else {
            panic!(
                "container {} created from missing image {}",
                spec.name, spec.image
            );
        };
        let container = ObservedContainer {
            name: spec.name.clone(),
            service: spec.service.clone(),
            replica: spec.replica,
            config_hash: spec.config_hash.clone(),
            image_digest: Some(digest),
            status: ContainerStatus::Created,
            health: None,
            exit_code: None,
            networks: spec.networks.clone(),
            labels: spec.labels.clone(),
            config: Some(spec.config.clone()),
        };
        s.containers.insert(spec.name.clone(), container);
        Ok(())
    }

    fn start_container(&self, name: &str) -> Result<(), BackendError> {
        let mut s = self.record(Call::StartContainer(name.into()))?;
        let Some(c) = s.containers.get_mut(name) else {
            panic!("start of missing container {name}");
        };
        assert!(!c.status.is_live(), "start of live container {name}");
        c.status = ContainerStatus::Running;
        Ok(())
    }

    fn stop_container(&self, name: &str, _timeout: Option<Duration>) -> Result<(), BackendError> {
        let mut s = self.record(Call::StopContainer(name.into()))?;
        let Some(c) = s.containers.get_mut(name) else {
            panic!("stop of missing container {name}");
        };
        c.status = ContainerStatus::Exited;
        Ok(())
    }

    fn remove_container(&self, name: &str, _volumes: bool) -> Result<(), BackendError> {
        let mut s = self.record(Call::RemoveContainer(name.into()))?;
        let Some(c) = s.containers.remove(name) else {
            panic!("remove of missing container {name}");
        };
        assert!(!c.status.is_live(), "remove of live container {name}");
        Ok(())
    }

    fn inspect_container(&self, name: &str) -> Result<ObservedContainer, BackendError> {
        let s = self.lock();
        s.containers
            .get(name)
            .cloned()
            .ok_or_else(|| BackendError::NotFound {
                kind: "container",
                name: name.to_string(),
            })
    }
}

impl NetworkBackend for FakeHost {
    fn list_networks(&self, selector: &Labels) -> Result<Vec<ObservedNetwork>, BackendError> {
        let s = self.record(Call::ListNetworks)?;
        Ok(s.networks
            .values()
            .filter(|n| matches(&n.labels, selector))
            .cloned()
            .collect())
    }

    fn create_network(&self, spec: &NetworkSpec) -> Result<(), BackendError> {
        let mut s = self.record(Call::CreateNetwork(spec.name.clone()))?;
        assert!(
            !s.networks.contains_key(&spec.name),
            "create of existing network {}",
            spec.name
        );
        let network = ObservedNetwork {
            name: spec.name.clone(),
            labels: spec.labels.clone(),
            config: spec.config.clone(),
        };
        s.networks.insert(spec.name.clone(), network);
        Ok(())
    }

    fn remove_network(&self, name: &str) -> Result<(), BackendError> {
        let mut s = self.record(Call::RemoveNetwork(name.into()))?;
        let users: Vec<&str> = s
            .containers
            .values()
            .filter(|c| c.networks.iter().any(|n| n == name))
            .map(|c| c.name.as_str())
            .collect();
        assert!(
            users.is_empty(),
            "remove of network {name} used by {users:?}"
        );
        assert!(
            s.networks.remove(name).is_some(),
            "remove of missing network {name}"
        );
        Ok(())
    }
}

impl VolumeBackend for FakeHost {
    fn list_volumes(&self, selector: &Labels) -> Result<Vec<ObservedVolume>, BackendError> {
        let s = self.record(Call::ListVolumes)?;
        Ok(s.volumes
            .values()
            .filter(|v| matches(&v.labels, selector))
            .cloned()
            .collect())
    }

    fn create_volume(&self, spec: &VolumeSpec) -> Result<(), BackendError> {
        let mut s = self.record(Call::CreateVolume(spec.name.clone()))?;
        assert!(
            !s.volumes.contains_key(&spec.name),
            "create of existing volume {}",
            spec.name
        );
        let volume = ObservedVolume {
            name: spec.name.clone(),
            labels: spec.labels.clone(),
            config: spec.config.clone(),
        };
        s.volumes.insert(spec.name.clone(), volume);
        Ok(())
    }

    fn remove_volume(&self, name: &str) -> Result<(), BackendError> {
        let mut s = self.record(Call::RemoveVolume(name.into()))?;
        assert!(
            s.volumes.remove(name).is_some(),
            "remove of missing volume {name}"
        );
        Ok(())
    }
}

impl ImageBackend for FakeHost {
    fn image_digest(&self, reference: &str) -> Result<Option<String>, BackendError> {
        let s = self.record(Call::ImageDigest(reference.into()))?;
        Ok(s.images.get(reference).cloned())
    }

    fn pull_image(&self, reference: &str) -> Result<String, BackendError> {
        let mut s = self.record(Call::PullImage(reference.into()))?;
        let Some(digest) = s.registry.get(reference).cloned() else {
            return Err(BackendError::NotFound {
                kind: "image",
                name: reference.into(),
            });
        };
        s.images.insert(reference.into(), digest.clone());
        Ok(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{NetworkConfig, container_labels, observe, project_selector};

    fn spec(name: &str, networks: &[&str]) -> ContainerSpec {
        ContainerSpec {
            name: name.into(),
            service: "web".into(),
            replica: 1,
            image: "nginx".into(),
            config_hash: "h".into(),
            config: serde_json::json!({"image": "nginx"}),
            networks: networks.iter().map(|n| n.to_string()).collect(),
            labels: container_labels("shop", "web", 1, "h"),
        }
    }

    #[test]
    fn a_created_and_started_container_is_observed_running_with_its_image_digest() {
        let host = FakeHost::new();
        host.add_image("nginx", "sha256:1");
        host.create_container(&spec("shop-web-1", &[]))
            .expect("create");
        host.start_container("shop-web-1").expect("start");
        let state = observe(&host, "shop", &["nginx".into()]).expect("observe");
        assert_eq!(state.containers[0].status, ContainerStatus::Running);
        assert_eq!(
            state.containers[0].image_digest.as_deref(),
            Some("sha256:1")
        );
        assert_eq!(state.images["nginx"].as_deref(), Some("sha256:1"));
    }

    #[test]
    fn the_injected_failure_hits_the_nth_mutating_call_and_changes_nothing() {
        let host = FakeHost::new();
        host.publish("nginx", "sha256:1");
        host.fail_on_call(2);
        let _ = host.list_containers(&project_selector("shop"));
        host.pull_image("nginx").expect("first mutation succeeds");
        let net = NetworkSpec {
            name: "shop_default".into(),
            labels: project_selector("shop"),
            config: NetworkConfig::default(),
        };
        assert!(host.create_network(&net).is_err());
        assert!(
            host.list_networks(&project_selector("shop"))
                .expect("list")
                .is_empty()
        );
        assert_eq!(
            host.mutating_calls(),
            [
                Call::PullImage("nginx".into()),
                Call::CreateNetwork("shop_default".into())
            ]
        );
        host.create_network(&net).expect("only the nth call fails");
    }

    #[test]
    #[should_panic(expected = "start of missing container")]
    fn starting_a_container_that_does_not_exist_panics() {
        let _ = FakeHost::new().start_container("ghost");
    }

    #[test]
    #[should_panic(expected = "missing network")]
    fn creating_a_container_on_a_missing_network_panics() {
        let host = FakeHost::new();
        host.add_image("nginx", "sha256:1");
        let _ = host.create_container(&spec("shop-web-1", &["shop_default"]));
    }

    #[test]
    fn pulling_an_image_the_registry_lacks_is_an_error_not_a_panic() {
        let err = FakeHost::new().pull_image("nope").expect_err("missing");
        assert_eq!(err.to_string(), "image nope not found");
    }
}
