//! A strict in-memory host implementing every backend trait, for tests of
//! observe → plan → apply without root.
//!
//! Invariants: every call is recorded as a typed [`Call`]; a call that makes
//! no sense on the current state (starting a container that does not exist,
//! removing a running one, creating a container on a missing network or
//! image) panics, because a correct executor never makes it; the failure
//! injected with [`FakeHost::fail_on_call`] or [`FakeHost::fail_call`]
//! changes nothing on the host.
//!
//! Containers can be scripted so that waits are testable without sleeping:
//! [`FakeHost::on_start`] says what the containers of a service do once
//! started (exit, turn healthy or unhealthy), possibly only after a number
//! of inspections, and [`FakeHost::set_health`] / [`FakeHost::set_exit`]
//! change a container at once. A stop records exit code 143 (SIGTERM).
//! [`FakeHost::break_network`] marks a network unusable (its bridge deleted
//! by hand); removing it still succeeds, and creating it again heals it.
//! [`FakeHost::set_call_delay`] makes every mutating call take time, and
//! [`FakeHost::max_concurrent_calls`] tells how many overlapped.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::backend::{
    BackendError, ContainerBackend, ContainerSpec, ContainerStatus, Health, ImageBackend, Labels,
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
    /// `inspect_container` (not mutating).
    InspectContainer(String),
}

/// What a started container of a scripted service does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerOutcome {
    /// Exits with this code.
    Exit(i32),
    /// Its healthcheck passes (it reports `starting` until then).
    Healthy,
    /// Its healthcheck fails (it reports `starting` until then).
    Unhealthy,
}

/// A scripted outcome and how many inspections still see the state before it.
#[derive(Debug, Clone, Copy)]
struct Script {
    outcome: ContainerOutcome,
    after: u32,
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
    fail_calls: Vec<Call>,
    /// By service: what its containers do once started.
    scripts: BTreeMap<String, Script>,
    /// By container: the outcome still to come.
    pending: BTreeMap<String, Script>,
    call_delay: Duration,
}

/// The in-memory host. It is `Sync`: an executor may call it from several
/// threads at once.
#[derive(Debug, Default)]
pub struct FakeHost {
    state: Mutex<State>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
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

    /// Makes the first call equal to `call` (from now on) fail, whichever
    /// thread makes it, mutating or not; the failure changes nothing on the
    /// host.
    pub fn fail_call(&self, call: Call) {
        self.lock().fail_calls.push(call);
    }

    /// Started containers of `service` reach `outcome` at once.
    pub fn on_start(&self, service: &str, outcome: ContainerOutcome) {
        self.on_start_after(service, outcome, 0);
    }

    /// Started containers of `service` reach `outcome` once `inspections`
    /// inspections have seen them running (and `starting` for a health
    /// outcome).
    pub fn on_start_after(&self, service: &str, outcome: ContainerOutcome, inspections: u32) {
        let script = Script {
            outcome,
            after: inspections,
        };
        self.lock().scripts.insert(service.into(), script);
    }

    /// Sets the health of the container `name`; panics when it is missing.
    pub fn set_health(&self, name: &str, health: Health) {
        let mut s = self.lock();
        s.pending.remove(name);
        let Some(c) = s.containers.get_mut(name) else {
            panic!("set_health of missing container {name}");
        };
        c.health = Some(health);
    }

    /// Makes the container `name` exit with `code`; panics when it is missing.
    pub fn set_exit(&self, name: &str, code: i32) {
        let mut s = self.lock();
        s.pending.remove(name);
        let Some(c) = s.containers.get_mut(name) else {
            panic!("set_exit of missing container {name}");
        };
        reach(c, ContainerOutcome::Exit(code));
    }

    /// Makes every mutating call take `delay` (outside the host's lock, so
    /// that parallel calls overlap).
    pub fn set_call_delay(&self, delay: Duration) {
        self.lock().call_delay = delay;
    }

    /// The most mutating calls that were in progress at the same time.
    pub fn max_concurrent_calls(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
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

    /// Makes the network `name` unusable for `reason`, as when its bridge
    /// is deleted by hand: it stays listed, with [`ObservedNetwork::broken`]
    /// set, until it is removed (a network created again is sound). Panics
    /// when the network is missing.
    pub fn break_network(&self, name: &str, reason: &str) {
        let mut s = self.lock();
        let Some(n) = s.networks.get_mut(name) else {
            panic!("break_network of missing network {name}");
        };
        n.broken = Some(reason.into());
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
        let mutating = is_mutating(&call);
        if mutating {
            self.take_time();
        }
        let mut s = self.lock();
        s.calls.push(call.clone());
        let listed = s.fail_calls.iter().position(|c| *c == call);
        if let Some(i) = listed {
            s.fail_calls.remove(i);
        }
        if mutating {
            s.mutations += 1;
        }
        if listed.is_some() || (mutating && s.fail_on == Some(s.mutations)) {
            return Err(BackendError::Failed {
                action: format!("{call:?}"),
                target: "fake host".into(),
                source: "injected failure".into(),
            });
        }
        Ok(s)
    }

    /// Sleeps the call delay, counted as one call in flight.
    fn take_time(&self) {
        let delay = self.lock().call_delay;
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn is_mutating(call: &Call) -> bool {
    !matches!(
        call,
        Call::ListContainers
            | Call::ListNetworks
            | Call::ListVolumes
            | Call::ImageDigest(_)
            | Call::InspectContainer(_)
    )
}

/// Puts `c` in the state `outcome` describes.
fn reach(c: &mut ObservedContainer, outcome: ContainerOutcome) {
    match outcome {
        ContainerOutcome::Exit(code) => {
            c.status = ContainerStatus::Exited;
            c.exit_code = Some(code);
        }
        ContainerOutcome::Healthy => c.health = Some(Health::Healthy),
        ContainerOutcome::Unhealthy => c.health = Some(Health::Unhealthy),
    }
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
        c.exit_code = None;
        c.health = None;
        let service = c.service.clone();
        let Some(script) = s.scripts.get(&service).copied() else {
            s.pending.remove(name);
            return Ok(());
        };
        if script.after == 0 {
            if let Some(c) = s.containers.get_mut(name) {
                reach(c, script.outcome);
            }
        } else {
            let health = !matches!(script.outcome, ContainerOutcome::Exit(_));
            if let Some(c) = s.containers.get_mut(name).filter(|_| health) {
                c.health = Some(Health::Starting);
            }
            s.pending.insert(name.into(), script);
        }
        Ok(())
    }

    fn stop_container(&self, name: &str, _timeout: Option<Duration>) -> Result<(), BackendError> {
        let mut s = self.record(Call::StopContainer(name.into()))?;
        s.pending.remove(name);
        let Some(c) = s.containers.get_mut(name) else {
            panic!("stop of missing container {name}");
        };
        if c.status.is_live() {
            c.status = ContainerStatus::Exited;
            c.exit_code = Some(143);
            c.health = None;
        }
        Ok(())
    }

    fn remove_container(&self, name: &str, _volumes: bool) -> Result<(), BackendError> {
        let mut s = self.record(Call::RemoveContainer(name.into()))?;
        s.pending.remove(name);
        let Some(c) = s.containers.remove(name) else {
            panic!("remove of missing container {name}");
        };
        assert!(!c.status.is_live(), "remove of live container {name}");
        Ok(())
    }

    fn inspect_container(&self, name: &str) -> Result<ObservedContainer, BackendError> {
        let mut s = self.record(Call::InspectContainer(name.into()))?;
        let seen = s
            .containers
            .get(name)
            .cloned()
            .ok_or_else(|| BackendError::NotFound {
                kind: "container",
                name: name.to_string(),
            })?;
        let due = match s.pending.get_mut(name) {
            Some(script) if script.after <= 1 => Some(script.outcome),
            Some(script) => {
                script.after -= 1;
                None
            }
            None => None,
        };
        if let Some(outcome) = due {
            s.pending.remove(name);
            if let Some(c) = s.containers.get_mut(name) {
                reach(c, outcome);
            }
        }
        Ok(seen)
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
            broken: None,
        };
        s.networks.insert(spec.name.clone(), network);
        Ok(())
    }

    fn remove_network(&self, name: &str) -> Result<(), BackendError> {
        let mut s = self.record(Call::RemoveNetwork(name.into()))?;
        let users: Vec<&str> = s
            .containers
            .values()
            .filter(|c| c.networks.iter().any(|n| n == name) && c.status.is_live())
            .map(|c| c.name.as_str())
            .collect();
        assert!(
            users.is_empty(),
            "remove of network {name} used by {users:?}"
        );
        // As on the host: stopped containers still attached are detached.
        for c in s.containers.values_mut() {
            c.networks.retain(|n| n != name);
        }
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
mod tests;
