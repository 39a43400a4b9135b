//! The plan for `down`: stop and remove the project's containers, then its
//! networks, and with `--volumes` its volumes. Pure, like [`super::plan`].
//!
//! Invariants: dependents stop before the services they depend on (with a
//! stack file; without one, from labels only, every stop is independent); a
//! container is removed only after its stop; every stop comes before the
//! first removal in the plan; a network is removed after every stop of a
//! container attached to it (its removal detaches the stopped ones, whose
//! own removals may run meanwhile), and kept while a container that stays
//! (an orphan without `--remove-orphans`, another service than the ones
//! named) is attached to it; a volume goes only with `--volumes`, after the
//! removal of every container that may mount it; objects without our labels
//! never appear in the observed state, so they are never touched.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Action, Builder, Change, Plan};
use crate::backend::{LABEL_NETWORK, LABEL_VOLUME, ObservedContainer, ObservedState};
use crate::desired::{Desired, DesiredService};

/// What `down` was asked for besides the project.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DownOptions {
    /// Remove the project's volumes too (`-v`, `--volumes`), and the
    /// anonymous volumes of its containers.
    pub volumes: bool,
    /// Remove containers of services no longer in the stack file.
    pub remove_orphans: bool,
    /// Only these services' containers (all when empty).
    pub services: Vec<String>,
}

/// Plans `down` of the project observed in `observed`. `desired` is the
/// stack file when there is one: it gives the stop order and tells orphans
/// apart; without it every container of the project is removed.
pub fn plan_down(
    desired: Option<&Desired>,
    observed: &ObservedState,
    options: &DownOptions,
) -> Plan {
    let mut b = Builder::default();
    let (targets, kept) = select(&mut b, desired, observed, options);
    let (stopped, removed) = b.stop_and_remove(desired, &targets, options.volumes);
    b.remove_networks(observed, &kept, &stopped);
    if options.volumes {
        b.remove_volumes(desired, observed, &kept, &removed);
    }
    Plan {
        ops: b.ops,
        warnings: b.warnings,
    }
}

/// Splits the observed containers into those to remove and those kept,
/// warning about kept orphans.
fn select<'a>(
    b: &mut Builder,
    desired: Option<&Desired>,
    observed: &'a ObservedState,
    options: &DownOptions,
) -> (Vec<&'a ObservedContainer>, Vec<&'a ObservedContainer>) {
    let mut targets = Vec::new();
    let mut kept = Vec::new();
    for c in &observed.containers {
        let named = options.services.is_empty() || options.services.contains(&c.service);
        let orphan = desired.is_some_and(|d| d.service(&c.service).is_none());
        if named && orphan && !options.remove_orphans {
            b.warnings.push(format!(
                "orphan container {} (service {}) is kept; use --remove-orphans to remove it",
                c.name, c.service
            ));
        }
        if named && (!orphan || options.remove_orphans) {
            targets.push(c);
        } else {
            kept.push(c);
        }
    }
    (targets, kept)
}

/// The cause of every operation of `down`: `down: <before> → <after>`.
fn down(before: &str, after: &str) -> Vec<Change> {
    vec![Change {
        field: "down".into(),
        old: Some(before.into()),
        new: Some(after.into()),
    }]
}

/// The removal of `c`, its anonymous volumes too when `volumes`.
fn remove_action(c: &ObservedContainer, volumes: bool) -> Action {
    Action::RemoveContainer {
        name: c.name.clone(),
        service: c.service.clone(),
        volumes,
    }
}

impl Builder {
    /// Stops the live targets, dependents first, and removes every target;
    /// returns container name → index of its stop (live ones only), and
    /// container name → index of its removal.
    fn stop_and_remove(
        &mut self,
        desired: Option<&Desired>,
        targets: &[&ObservedContainer],
        volumes: bool,
    ) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
        let dependents = desired.map(dependents).unwrap_or_default();
        // What a dependency's stop waits for: the stops of its dependents,
        // or (for a dependent with nothing to stop) what those waited for.
        let mut done: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        let mut stopped = BTreeMap::new();
        let mut removals = Vec::new();
        for service in stop_order(desired, targets) {
            let mut deps: BTreeSet<usize> = BTreeSet::new();
            for d in dependents.get(service).into_iter().flatten() {
                deps.extend(done.get(d.as_str()).into_iter().flatten());
            }
            let deps: Vec<usize> = deps.into_iter().collect();
            let mut stops = Vec::new();
            for c in targets.iter().filter(|c| c.service == service) {
                let id = format!("service:{}:{}", c.service, c.replica);
                let mut after = vec![];
                if c.status.is_live() {
                    let stop = Action::StopContainer {
                        name: c.name.clone(),
                        service: c.service.clone(),
                    };
                    let i = self.push(id.clone(), stop, down(&status(c), "stopped"), deps.clone());
                    stops.push(i);
                    after.push(i);
                    stopped.insert(c.name.clone(), i);
                }
                removals.push((c, id, after));
            }
            done.insert(service, if stops.is_empty() { deps } else { stops });
        }
        // Every stop comes before the first removal: the executor starts the
        // ready operation of lowest index, so a stop that waits for a free
        // worker is not passed by removals (which would delay the stops, and
        // the network's removal after them).
        let mut removed = BTreeMap::new();
        for (c, id, after) in removals {
            let remove = remove_action(c, volumes);
            let i = self.push(id, remove, down(&status(c), "absent"), after);
            removed.insert(c.name.clone(), i);
        }
        (stopped, removed)
    }

    /// Removes every network of the project that no kept container uses,
    /// after the stops of the containers attached to it: the removal of a
    /// network detaches the stopped containers still attached to it (their
    /// own removals may still run), so its bridge, which takes the kernel a
    /// while to delete, goes while they do.
    fn remove_networks(
        &mut self,
        observed: &ObservedState,
        kept: &[&ObservedContainer],
        stopped: &BTreeMap<String, usize>,
    ) {
        for n in &observed.networks {
            let users: Vec<&str> = kept
                .iter()
                .filter(|c| c.networks.contains(&n.name))
                .map(|c| c.name.as_str())
                .collect();
            if !users.is_empty() {
                self.warnings.push(format!(
                    "network {} is kept: containers that stay use it ({})",
                    n.name,
                    users.join(", ")
                ));
                continue;
            }
            let deps: BTreeSet<usize> = observed
                .containers
                .iter()
                .filter(|c| c.networks.contains(&n.name))
                .filter_map(|c| stopped.get(&c.name).copied())
                .collect();
            let key = n.labels.get(LABEL_NETWORK).unwrap_or(&n.name);
            let action = Action::RemoveNetwork {
                name: n.name.clone(),
            };
            let id = format!("network:{key}");
            self.push(
                id,
                action,
                down("present", "absent"),
                deps.into_iter().collect(),
            );
        }
    }

    /// Removes every volume of the project that no kept container mounts,
    /// after the removal of every container that may mount it: with a
    /// stack file, those of the services that name it, of services the
    /// file no longer has, and those made from another version of their
    /// service (the file does not say what they mount). Without a stack
    /// file nothing says which containers mount what, so every volume
    /// waits for every removal and is kept while any container stays.
    fn remove_volumes(
        &mut self,
        desired: Option<&Desired>,
        observed: &ObservedState,
        kept: &[&ObservedContainer],
        removed: &BTreeMap<String, usize>,
    ) {
        for v in &observed.volumes {
            let users: Vec<&str> = kept
                .iter()
                .filter(|c| may_mount(desired, c, &v.name))
                .map(|c| c.name.as_str())
                .collect();
            if !users.is_empty() {
                self.warnings.push(format!(
                    "volume {} is kept: containers that stay may use it ({})",
                    v.name,
                    users.join(", ")
                ));
                continue;
            }
            let deps: BTreeSet<usize> = observed
                .containers
                .iter()
                .filter(|c| may_mount(desired, c, &v.name) || outdated(desired, c))
                .filter_map(|c| removed.get(&c.name).copied())
                .collect();
            let key = v.labels.get(LABEL_VOLUME).unwrap_or(&v.name);
            let action = Action::RemoveVolume {
                name: v.name.clone(),
            };
            self.push(
                format!("volume:{key}"),
                action,
                down("present", "absent"),
                deps.into_iter().collect(),
            );
        }
    }
}

/// Whether container `c` may mount the volume `volume`: its service names
/// it, or no stack file (or no service of it) says what `c` mounts.
fn may_mount(desired: Option<&Desired>, c: &ObservedContainer, volume: &str) -> bool {
    desired.is_none_or(|d| {
        d.service(&c.service)
            .is_none_or(|s| s.volumes.iter().any(|v| v == volume))
    })
}

/// Whether container `c` was made from another version of its service
/// than the stack file's.
fn outdated(desired: Option<&Desired>, c: &ObservedContainer) -> bool {
    desired
        .and_then(|d| d.service(&c.service))
        .is_some_and(|s| s.config_hash != c.config_hash)
}

/// `running`, `exited`, … as the backend spells it.
fn status(c: &ObservedContainer) -> String {
    match serde_json::to_value(c.status) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "present".into(),
    }
}

/// Names of the services `svc` depends on, read through serde so that both
/// a list of names and a list of `{service, condition, …}` entries work.
fn dependency_names(svc: &DesiredService) -> Vec<String> {
    let Ok(serde_json::Value::Array(entries)) = serde_json::to_value(&svc.depends_on) else {
        return vec![];
    };
    entries
        .iter()
        .filter_map(|e| match e {
            serde_json::Value::String(s) => Some(s.clone()),
            other => other.get("service")?.as_str().map(str::to_string),
        })
        .collect()
}

/// Service → the services that depend on it.
fn dependents(desired: &Desired) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for svc in &desired.services {
        for dep in dependency_names(svc) {
            out.entry(dep).or_default().push(svc.name.clone());
        }
    }
    out
}

/// The services of `targets`, each after every service that depends on it;
/// services the stack file does not know (orphans, or all of them without
/// one) first, by name.
fn stop_order<'a>(desired: Option<&Desired>, targets: &[&'a ObservedContainer]) -> Vec<&'a str> {
    let mut services: Vec<&'a str> = targets.iter().map(|c| c.service.as_str()).collect();
    services.sort_unstable();
    services.dedup();
    let Some(desired) = desired else {
        return services;
    };
    let dependents = dependents(desired);
    let (mut order, mut known): (Vec<&'a str>, Vec<&'a str>) = services
        .into_iter()
        .partition(|s| desired.service(s).is_none());
    // File order, so that unrelated services keep the order of the file.
    known.sort_by_key(|s| desired.services.iter().position(|d| d.name == *s));
    while !known.is_empty() {
        let ready = known.iter().position(|s| {
            dependents
                .get(*s)
                .into_iter()
                .flatten()
                .all(|d| order.contains(&d.as_str()) || !known.contains(&d.as_str()))
        });
        // A cycle (rejected by the loader) falls back to file order.
        order.push(known.remove(ready.unwrap_or(0)));
    }
    order
}

#[cfg(test)]
mod tests;
