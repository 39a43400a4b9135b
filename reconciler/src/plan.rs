//! The planner: a pure function from the desired state, the observed state
//! and the options to a [`Plan`], a DAG of operations each with a resource
//! id, a cause and its dependencies.
//!
//! Invariants: a host that matches the desired state gives an empty plan;
//! dependencies always point to earlier operations (the op list is a
//! topological order); external networks and volumes are never created or
//! removed; volumes are never removed by a plan for `up`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::backend::{
    ContainerSpec, NetworkSpec, ObservedContainer, ObservedState, VolumeSpec, container_labels,
};
use crate::desired::{Desired, DesiredService, Replica};

mod diff;

use diff::{config_changes, describe_changes};

/// When images are pulled (`--pull`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PullPolicy {
    /// Pull images that are not present locally.
    #[default]
    Missing,
    /// Pull every image.
    Always,
    /// Never pull.
    Never,
}

/// What the user asked for besides the stack file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PlanOptions {
    /// Remove containers (and networks) of services no longer in the file.
    pub remove_orphans: bool,
    /// Recreate every existing replica; wins over `no_recreate`.
    pub force_recreate: bool,
    /// Never recreate an existing replica, even when its config changed.
    pub no_recreate: bool,
    /// When images are pulled.
    pub pull: PullPolicy,
}

/// One field that differs between the host and the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Dotted path of the field (`environment.FOO`, `image`).
    pub field: String,
    /// Value on the host (`None`: unset).
    pub old: Option<String>,
    /// Value wanted (`None`: unset).
    pub new: Option<String>,
}

impl Change {
    fn new(field: &str, old: impl Into<Option<String>>, new: impl Into<Option<String>>) -> Self {
        Self {
            field: field.to_string(),
            old: old.into(),
            new: new.into(),
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(unset)".into());
        write!(
            f,
            "{}: {} → {}",
            self.field,
            show(&self.old),
            show(&self.new)
        )
    }
}

/// What an operation does, with everything needed to do it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Create a network.
    CreateNetwork(NetworkSpec),
    /// Remove a network.
    RemoveNetwork {
        /// Full name.
        name: String,
    },
    /// Create a volume.
    CreateVolume(VolumeSpec),
    /// Remove a volume (only `down -v` plans this).
    RemoveVolume {
        /// Full name.
        name: String,
    },
    /// Pull an image.
    PullImage {
        /// Image reference.
        reference: String,
    },
    /// Create a container (not started).
    CreateContainer(ContainerSpec),
    /// Start an existing container.
    StartContainer {
        /// Container name.
        name: String,
        /// Its service.
        service: String,
    },
    /// Replace a container by one created from `spec`, left running.
    RecreateContainer(ContainerSpec),
    /// Stop a container.
    StopContainer {
        /// Container name.
        name: String,
        /// Its service.
        service: String,
    },
    /// Remove a stopped container.
    RemoveContainer {
        /// Container name.
        name: String,
        /// Its service.
        service: String,
    },
}

impl Action {
    /// `(symbol, verb, kind, name, service)` for rendering.
    fn parts(&self) -> (&'static str, &'static str, &'static str, &str, Option<&str>) {
        match self {
            Self::CreateNetwork(s) => ("+", "create", "network", &s.name, None),
            Self::RemoveNetwork { name } => ("-", "remove", "network", name, None),
            Self::CreateVolume(s) => ("+", "create", "volume", &s.name, None),
            Self::RemoveVolume { name } => ("-", "remove", "volume", name, None),
            Self::PullImage { reference } => ("+", "pull", "image", reference, None),
            Self::CreateContainer(s) => ("+", "create", "container", &s.name, Some(&s.service)),
            Self::StartContainer { name, service } => {
                (">", "start", "container", name, Some(service))
            }
            Self::RecreateContainer(s) => ("~", "recreate", "container", &s.name, Some(&s.service)),
            Self::StopContainer { name, service } => {
                ("-", "stop", "container", name, Some(service))
            }
            Self::RemoveContainer { name, service } => {
                ("-", "remove", "container", name, Some(service))
            }
        }
    }
}

/// One operation of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Resource id: `service:web:1`, `network:front`, `volume:data`, `image:nginx`.
    pub id: String,
    /// What to do.
    pub action: Action,
    /// Why: the fields that differ (empty when the resource is missing).
    pub cause: Vec<Change>,
    /// Indices of the operations that must finish first (all smaller).
    pub deps: Vec<usize>,
}

/// The operations that bring the host to the desired state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Plan {
    /// Operations in a topological order.
    pub ops: Vec<Op>,
    /// Things left alone that the user should know about (orphans).
    pub warnings: Vec<String>,
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// One line per operation (`[2] + create container shop-web-1 (service
    /// web) after [0]`), its causes indented below, then the warnings.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        if self.ops.is_empty() {
            out.push_str("no changes\n");
        }
        for (i, op) in self.ops.iter().enumerate() {
            let (sym, verb, kind, name, service) = op.action.parts();
            out.push_str(&format!("[{i}] {sym} {verb} {kind} {name}"));
            if let Some(s) = service {
                out.push_str(&format!(" (service {s})"));
            }
            if !op.deps.is_empty() {
                let deps: Vec<String> = op.deps.iter().map(|d| format!("[{d}]")).collect();
                out.push_str(&format!(" after {}", deps.join(" ")));
            }
            out.push('\n');
            for change in &op.cause {
                out.push_str(&format!("      {change}\n"));
            }
        }
        for w in &self.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        out
    }
}

/// Plans the operations that turn `observed` into `desired`. Pure.
pub fn plan(desired: &Desired, observed: &ObservedState, options: &PlanOptions) -> Plan {
    let mut b = Builder::default();
    let resources = b.resources(desired, observed);
    let images = b.images(desired, observed, options.pull);
    let mut final_ops: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for svc in service_order(desired) {
        let mut deps: BTreeSet<usize> = BTreeSet::new();
        deps.extend(svc.networks.iter().filter_map(|n| resources.get(n)));
        deps.extend(svc.volumes.iter().filter_map(|v| resources.get(v)));
        deps.extend(images.get(&svc.image));
        for dep in &svc.depends_on {
            deps.extend(final_ops.get(dep.as_str()).into_iter().flatten());
        }
        let deps: Vec<usize> = deps.into_iter().collect();
        let done = b.service(desired, svc, observed, options, &deps);
        final_ops.insert(&svc.name, done);
    }
    b.orphans(desired, observed, options);
    Plan {
        ops: b.ops,
        warnings: b.warnings,
    }
}

#[derive(Default)]
struct Builder {
    ops: Vec<Op>,
    warnings: Vec<String>,
}

impl Builder {
    fn push(&mut self, id: String, action: Action, cause: Vec<Change>, deps: Vec<usize>) -> usize {
        self.ops.push(Op {
            id,
            action,
            cause,
            deps,
        });
        self.ops.len() - 1
    }

    /// Creates missing networks and volumes; returns full name → op index.
    fn resources(
        &mut self,
        desired: &Desired,
        observed: &ObservedState,
    ) -> BTreeMap<String, usize> {
        let mut created = BTreeMap::new();
        for net in desired.networks.values().filter(|n| !n.external) {
            match observed.networks.iter().find(|o| o.name == net.name) {
                None => {
                    let spec = NetworkSpec {
                        name: net.name.clone(),
                        labels: net.labels.clone(),
                        config: net.config.clone(),
                    };
                    let i = self.push(format!("network:{}", net.key), Action::CreateNetwork(spec), vec![], vec![]);
                    created.insert(net.name.clone(), i);
                }
                Some(o) if o.config != net.config => self.warnings.push(format!(
                    "network {} differs from the stack file ({}); it is kept as is (remove it with `down` to apply the change)",
                    net.name,
                    describe_changes(&o.config, &net.config)
                )),
                Some(_) => {}
            }
        }
        for vol in desired.volumes.values().filter(|v| !v.external) {
            match observed.volumes.iter().find(|o| o.name == vol.name) {
                None => {
                    let spec = VolumeSpec {
                        name: vol.name.clone(),
                        labels: vol.labels.clone(),
                        config: vol.config.clone(),
                    };
                    let i = self.push(format!("volume:{}", vol.key), Action::CreateVolume(spec), vec![], vec![]);
                    created.insert(vol.name.clone(), i);
                }
                Some(o) if o.config != vol.config => self.warnings.push(format!(
                    "volume {} differs from the stack file ({}); it is kept as is (its data would be lost)",
                    vol.name,
                    describe_changes(&o.config, &vol.config)
                )),
                Some(_) => {}
            }
        }
        created
    }

    /// Pulls images per `policy`; returns reference → op index.
    fn images(
        &mut self,
        desired: &Desired,
        observed: &ObservedState,
        policy: PullPolicy,
    ) -> BTreeMap<String, usize> {
        let mut pulls = BTreeMap::new();
        for reference in desired.images() {
            let present = matches!(observed.images.get(&reference), Some(Some(_)));
            let pull = match policy {
                PullPolicy::Always => true,
                PullPolicy::Missing => !present,
                PullPolicy::Never => false,
            };
            if pull {
                let cause = if present {
                    vec![Change::new("pull", None, "always".to_string())]
                } else {
                    vec![]
                };
                let action = Action::PullImage {
                    reference: reference.clone(),
                };
                let i = self.push(format!("image:{reference}"), action, cause, vec![]);
                pulls.insert(reference, i);
            }
        }
        pulls
    }

    /// Ops of one service; returns the ops after which it is up.
    fn service(
        &mut self,
        desired: &Desired,
        svc: &DesiredService,
        observed: &ObservedState,
        options: &PlanOptions,
        deps: &[usize],
    ) -> Vec<usize> {
        let mut done = Vec::new();
        let mine: Vec<&ObservedContainer> = observed
            .containers
            .iter()
            .filter(|c| c.service == svc.name)
            .collect();
        for replica in &svc.replicas {
            let id = format!("service:{}:{}", svc.name, replica.number);
            let spec = container_spec(desired, svc, replica);
            let Some(current) = mine.iter().find(|c| c.replica == replica.number) else {
                let create = self.push(
                    id.clone(),
                    Action::CreateContainer(spec),
                    vec![],
                    deps.to_vec(),
                );
                let start = Action::StartContainer {
                    name: replica.name.clone(),
                    service: svc.name.clone(),
                };
                done.push(self.push(id, start, vec![], vec![create]));
                continue;
            };
            let cause = recreate_cause(svc, current, observed, options);
            if !cause.is_empty() {
                done.push(self.push(id, Action::RecreateContainer(spec), cause, deps.to_vec()));
            } else if !current.status.is_live() {
                let cause = vec![Change::new(
                    "status",
                    status_name(current),
                    "running".to_string(),
                )];
                let start = Action::StartContainer {
                    name: current.name.clone(),
                    service: svc.name.clone(),
                };
                done.push(self.push(id, start, cause, deps.to_vec()));
            }
        }
        let wanted = svc.replicas.len();
        let mut extra: Vec<&&ObservedContainer> = mine
            .iter()
            .filter(|c| !svc.replicas.iter().any(|r| r.number == c.replica))
            .collect();
        extra.sort_by_key(|c| std::cmp::Reverse(c.replica));
        // The highest replica number on the host is the scale it was left at,
        // even when lower replicas are missing.
        let had = mine.iter().map(|c| c.replica).max().unwrap_or_default();
        for c in extra {
            let cause = Change::new("scale", had.to_string(), wanted.to_string());
            self.remove_container(c, cause);
        }
        done
    }

    /// Stops (when live) and removes `c`; returns the removal's index.
    fn remove_container(&mut self, c: &ObservedContainer, cause: Change) -> usize {
        let id = format!("service:{}:{}", c.service, c.replica);
        let mut deps = vec![];
        if c.status.is_live() {
            let stop = Action::StopContainer {
                name: c.name.clone(),
                service: c.service.clone(),
            };
            deps.push(self.push(id.clone(), stop, vec![cause.clone()], vec![]));
        }
        let remove = Action::RemoveContainer {
            name: c.name.clone(),
            service: c.service.clone(),
        };
        self.push(id, remove, vec![cause], deps)
    }

    /// Containers of services no longer in the file, and our networks no
    /// longer in it: removed with `remove_orphans`, else a warning.
    fn orphans(&mut self, desired: &Desired, observed: &ObservedState, options: &PlanOptions) {
        let mut removed = Vec::new();
        for c in observed
            .containers
            .iter()
            .filter(|c| desired.service(&c.service).is_none())
        {
            if options.remove_orphans {
                let field = format!("services.{}", c.service);
                let cause = Change::new(&field, "present".to_string(), "absent".to_string());
                removed.push(self.remove_container(c, cause));
            } else {
                self.warnings.push(format!(
                    "orphan container {} (service {}) is kept; use --remove-orphans to remove it",
                    c.name, c.service
                ));
            }
        }
        let known: BTreeSet<&str> = desired.networks.values().map(|n| n.name.as_str()).collect();
        for n in observed
            .networks
            .iter()
            .filter(|n| !known.contains(n.name.as_str()))
        {
            if options.remove_orphans {
                let key = n
                    .labels
                    .get(crate::backend::LABEL_NETWORK)
                    .unwrap_or(&n.name);
                let action = Action::RemoveNetwork {
                    name: n.name.clone(),
                };
                let field = format!("networks.{key}");
                let cause = vec![Change::new(
                    &field,
                    "present".to_string(),
                    "absent".to_string(),
                )];
                self.push(format!("network:{key}"), action, cause, removed.clone());
            } else {
                self.warnings.push(format!(
                    "orphan network {} is kept; use --remove-orphans to remove it",
                    n.name
                ));
            }
        }
    }
}

fn status_name(c: &ObservedContainer) -> String {
    serde_json::to_value(c.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn container_spec(desired: &Desired, svc: &DesiredService, replica: &Replica) -> ContainerSpec {
    ContainerSpec {
        name: replica.name.clone(),
        service: svc.name.clone(),
        replica: replica.number,
        image: svc.image.clone(),
        config_hash: svc.config_hash.clone(),
        config: svc.config.clone(),
        networks: svc.networks.clone(),
        labels: container_labels(
            &desired.project,
            &svc.name,
            replica.number,
            &svc.config_hash,
        ),
    }
}

/// Why `current` must be recreated; empty when it need not be.
fn recreate_cause(
    svc: &DesiredService,
    current: &ObservedContainer,
    observed: &ObservedState,
    options: &PlanOptions,
) -> Vec<Change> {
    if options.force_recreate {
        return vec![Change::new(
            "recreate",
            None,
            "forced (--force-recreate)".to_string(),
        )];
    }
    if options.no_recreate {
        return vec![];
    }
    if current.config_hash != svc.config_hash {
        return config_changes(svc, current);
    }
    let local = observed.images.get(&svc.image).cloned().flatten();
    if let (Some(old), Some(new)) = (&current.image_digest, local)
        && *old != new
    {
        return vec![Change::new("image digest", old.clone(), new)];
    }
    let mut attached = current.networks.clone();
    attached.sort();
    if attached != svc.networks {
        return vec![Change::new(
            "networks",
            attached.join(", "),
            svc.networks.join(", "),
        )];
    }
    vec![]
}

/// Services with their dependencies first, otherwise in file order.
fn service_order(desired: &Desired) -> Vec<&DesiredService> {
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut order = Vec::new();
    while order.len() < desired.services.len() {
        let ready = desired.services.iter().find(|s| {
            !placed.contains(s.name.as_str())
                && s.depends_on
                    .iter()
                    .all(|d| placed.contains(d.as_str()) || desired.service(d).is_none())
        });
        // A cycle (rejected by the loader) falls back to file order.
        let next = ready.or_else(|| {
            desired
                .services
                .iter()
                .find(|s| !placed.contains(s.name.as_str()))
        });
        let Some(next) = next else { break };
        placed.insert(&next.name);
        order.push(next);
    }
    order
}

#[cfg(test)]
mod tests;
