//! The planner: a pure function from the desired state, the observed state
//! and the options to a [`Plan`], a DAG of operations each with a resource
//! id, a cause and its dependencies.
//!
//! Invariants: a host that matches the desired state gives an empty plan;
//! dependencies always point to earlier operations (the op list is a
//! topological order); external networks and volumes are never created or
//! removed; volumes are never removed by a plan for `up`; a network whose
//! settings drifted, or that is broken on the host (its bridge deleted by
//! hand), is removed only after every container attached to it,
//! and those containers are created again only after the new network; a
//! dependent's operations follow a [`Action::WaitFor`] on each dependency,
//! which itself follows the dependency's operations, and no wait is planned
//! for a service with nothing to start.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::backend::{ContainerSpec, NetworkSpec, ObservedState, VolumeSpec};
use crate::desired::{Condition, Desired, DesiredService};

mod diff;
mod down;
mod networks;
mod order;
mod resources;
mod service;

pub use down::{DownOptions, plan_down};
use service::{Pending, removal, service_ops};

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
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PlanOptions {
    /// Remove containers (and networks) of services no longer in the file.
    pub remove_orphans: bool,
    /// Recreate every existing replica; wins over `no_recreate`.
    pub force_recreate: bool,
    /// Never recreate an existing replica, even when its config changed.
    pub no_recreate: bool,
    /// When images are pulled.
    pub pull: PullPolicy,
    /// Services to plan (`up web`); empty means all. Others are left alone
    /// and never taken for orphans.
    #[serde(default)]
    pub services: Vec<String>,
    /// With `services`: plan only the named ones, not their dependencies
    /// (`--no-deps`), and wait for none of them.
    #[serde(default)]
    pub no_deps: bool,
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
        /// Remove its anonymous volumes too (`down -v`); `false` in plans
        /// for `up`.
        #[serde(default)]
        volumes: bool,
    },
    /// Restart a running container (stop, then start), because a
    /// `restart: true` dependency changed, or because it reports unhealthy
    /// and its service is marked `x-rcompose: {restart_on_unhealthy: true}`.
    RestartContainer {
        /// Container name.
        name: String,
        /// Its service.
        service: String,
    },
    /// Wait until every container of `dependency` satisfies `condition`
    /// before the operations of `service` go on.
    WaitFor {
        /// Project, to find the dependency's containers by label.
        project: String,
        /// The dependent service.
        service: String,
        /// The service waited for.
        dependency: String,
        /// What it must reach.
        condition: Condition,
        /// When `false`, a failed wait only warns.
        required: bool,
    },
}

impl Action {
    /// One symbol for the kind of change: `+` create, `-` remove or stop,
    /// `~` recreate or restart, `>` start, `*` wait.
    pub fn symbol(&self) -> &'static str {
        match self {
            Self::CreateNetwork(_)
            | Self::CreateVolume(_)
            | Self::PullImage { .. }
            | Self::CreateContainer(_) => "+",
            Self::RemoveNetwork { .. }
            | Self::RemoveVolume { .. }
            | Self::StopContainer { .. }
            | Self::RemoveContainer { .. } => "-",
            Self::RecreateContainer(_) | Self::RestartContainer { .. } => "~",
            Self::StartContainer { .. } => ">",
            Self::WaitFor { .. } => "*",
        }
    }

    /// What it does, for people: `create container shop-web-1`, `wait for
    /// service db to be healthy`.
    pub fn describe(&self) -> String {
        match self {
            Self::CreateNetwork(s) => format!("create network {}", s.name),
            Self::RemoveNetwork { name } => format!("remove network {name}"),
            Self::CreateVolume(s) => format!("create volume {}", s.name),
            Self::RemoveVolume { name } => format!("remove volume {name}"),
            Self::PullImage { reference } => format!("pull image {reference}"),
            Self::CreateContainer(s) => format!("create container {}", s.name),
            Self::StartContainer { name, .. } => format!("start container {name}"),
            Self::RecreateContainer(s) => format!("recreate container {}", s.name),
            Self::StopContainer { name, .. } => format!("stop container {name}"),
            Self::RemoveContainer { name, volumes, .. } if *volumes => {
                format!("remove container {name} and its anonymous volumes")
            }
            Self::RemoveContainer { name, .. } => format!("remove container {name}"),
            Self::RestartContainer { name, .. } => format!("restart container {name}"),
            Self::WaitFor {
                dependency,
                condition,
                required,
                ..
            } => {
                let state = match condition {
                    Condition::Started => "start",
                    Condition::Healthy => "be healthy",
                    Condition::CompletedSuccessfully => "complete successfully",
                };
                let optional = if *required { "" } else { "optional " };
                format!("wait for {optional}service {dependency} to {state}")
            }
        }
    }

    /// The service whose container it acts on, or that waits.
    pub fn service(&self) -> Option<&str> {
        match self {
            Self::CreateContainer(s) | Self::RecreateContainer(s) => Some(&s.service),
            Self::StartContainer { service, .. }
            | Self::StopContainer { service, .. }
            | Self::RemoveContainer { service, .. }
            | Self::RestartContainer { service, .. }
            | Self::WaitFor { service, .. } => Some(service),
            _ => None,
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

impl Op {
    /// What it does, for people: `create container shop-web-1`.
    pub fn describe(&self) -> String {
        self.action.describe()
    }
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
            let sym = op.action.symbol();
            out.push_str(&format!("[{i}] {sym} {}", op.describe()));
            if let Some(s) = op.action.service() {
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
    let selected = order::selected(desired, options, &mut b.warnings);
    let used = order::used_resources(desired, options, &selected);
    let resources = b.resources(desired, observed, options, &selected, used.as_ref());
    let images = b.images(desired, observed, options.pull, &selected);
    // What the services and orphans see: without the containers removed above.
    let observed = without(observed, &resources.removed);
    let mut progress: BTreeMap<&str, Progress> = BTreeMap::new();
    for svc in order::service_order(desired) {
        if !selected.contains(svc.name.as_str()) {
            continue;
        }
        let created = &resources.created;
        let mut deps: BTreeSet<usize> = BTreeSet::new();
        deps.extend(svc.networks.iter().filter_map(|n| created.get(n)));
        deps.extend(svc.volumes.iter().filter_map(|v| created.get(v)));
        deps.extend(images.get(&svc.image));
        let restart = restart_causes(svc, &progress);
        let replaced = &resources.replaced;
        let pending = service_ops(desired, svc, &observed, options, &restart, replaced);
        if pending.iter().any(|p| p.needs_deps) {
            deps.extend(b.waits(desired, svc, &progress, &selected));
        }
        let deps: Vec<usize> = deps.into_iter().collect();
        let done = b.emit_service(pending, &deps);
        progress.insert(&svc.name, done);
    }
    b.orphans(desired, &observed, options, &resources.removed);
    Plan {
        ops: b.ops,
        warnings: b.warnings,
    }
}

/// `observed` without the containers in `removed`.
fn without<'a>(
    observed: &'a ObservedState,
    removed: &BTreeMap<String, usize>,
) -> Cow<'a, ObservedState> {
    if removed.is_empty() {
        return Cow::Borrowed(observed);
    }
    let mut rest = observed.clone();
    rest.containers.retain(|c| !removed.contains_key(&c.name));
    Cow::Owned(rest)
}

/// What planning a service left for its dependents.
#[derive(Debug, Default)]
struct Progress {
    /// The ops after which it is up (starts, recreates, restarts).
    finals: Vec<usize>,
    /// `recreated` or `restarted` when its running containers change, for
    /// the dependents that ask for `restart: true`.
    changed: Option<&'static str>,
}

/// The causes that restart the running replicas of `svc`: one per
/// `restart: true` dependency that is recreated or restarted.
fn restart_causes(svc: &DesiredService, progress: &BTreeMap<&str, Progress>) -> Vec<Change> {
    svc.depends_on
        .iter()
        .filter(|d| d.restart)
        .filter_map(|d| {
            let what = progress.get(d.service.as_str())?.changed?;
            let field = format!("depends_on.{}", d.service);
            Some(Change::new(&field, "running".to_string(), what.to_string()))
        })
        .collect()
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

    /// Appends a batch; ops that need them get `deps`. Returns the index
    /// of each op of the batch.
    fn emit(&mut self, batch: Vec<Pending>, deps: &[usize]) -> Vec<usize> {
        let base = self.ops.len();
        batch
            .into_iter()
            .map(|p| {
                let mut d = if p.needs_deps { deps.to_vec() } else { vec![] };
                d.extend(p.after.map(|a| base + a));
                self.push(p.id, p.action, p.cause, d)
            })
            .collect()
    }

    /// Appends the ops of one service and says what they mean for its
    /// dependents.
    fn emit_service(&mut self, batch: Vec<Pending>, deps: &[usize]) -> Progress {
        let kinds: Vec<(bool, Option<&'static str>)> = batch
            .iter()
            .map(|p| {
                let changed = match p.action {
                    Action::RecreateContainer(_) => Some("recreated"),
                    // Only a create that replaces a container removed
                    // earlier in the plan has a cause.
                    Action::CreateContainer(_) if !p.cause.is_empty() => Some("recreated"),
                    Action::RestartContainer { .. } => Some("restarted"),
                    _ => None,
                };
                (p.brings_up(), changed)
            })
            .collect();
        let indices = self.emit(batch, deps);
        let finals = indices
            .iter()
            .zip(&kinds)
            .filter(|(_, (up, _))| *up)
            .map(|(i, _)| *i)
            .collect();
        // "recreated" wins over "restarted": it is the bigger change.
        let changed = kinds.iter().filter_map(|(_, c)| *c).min();
        Progress { finals, changed }
    }

    /// One wait per dependency of `svc` that is planned and has replicas,
    /// after that dependency's ops; returns their indices.
    fn waits(
        &mut self,
        desired: &Desired,
        svc: &DesiredService,
        progress: &BTreeMap<&str, Progress>,
        selected: &BTreeSet<&str>,
    ) -> Vec<usize> {
        let mut out = Vec::new();
        for d in &svc.depends_on {
            // A missing optional dependency, one left out by `--no-deps`,
            // and one scaled to zero have nothing to wait for.
            let Some(dep) = desired.service(&d.service) else {
                continue;
            };
            if !selected.contains(dep.name.as_str()) || dep.replicas.is_empty() {
                continue;
            }
            let after = progress
                .get(dep.name.as_str())
                .map(|p| p.finals.clone())
                .unwrap_or_default();
            let action = Action::WaitFor {
                project: desired.project.clone(),
                service: svc.name.clone(),
                dependency: dep.name.clone(),
                condition: d.condition,
                required: d.required,
            };
            out.push(self.push(format!("service:{}", svc.name), action, vec![], after));
        }
        out
    }

    /// Containers of services no longer in the file, and our networks no
    /// longer in it: removed with `remove_orphans`, else a warning.
    /// `earlier` holds the containers removed already (name → index):
    /// `observed` no longer lists them, but an orphan network's removal
    /// follows theirs.
    fn orphans(
        &mut self,
        desired: &Desired,
        observed: &ObservedState,
        options: &PlanOptions,
        earlier: &BTreeMap<String, usize>,
    ) {
        let mut removed: Vec<usize> = earlier.values().copied().collect();
        removed.sort_unstable();
        for c in observed
            .containers
            .iter()
            .filter(|c| desired.service(&c.service).is_none())
        {
            if options.remove_orphans {
                let field = format!("services.{}", c.service);
                let cause = Change::new(&field, "present".to_string(), "absent".to_string());
                let indices = self.emit(removal(c, vec![cause], 0), &[]);
                removed.extend(indices.last());
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

#[cfg(test)]
pub(crate) mod tests;
