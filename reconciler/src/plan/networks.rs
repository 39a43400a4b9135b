//! Recreation of the networks whose settings drifted from the stack file,
//! as newer docker compose does, and of the networks the host reports
//! broken ([`ObservedNetwork::broken`], e.g. a bridge deleted by hand): the
//! containers attached to such a network are stopped and removed, the
//! network is removed and created afresh, and the service operations then
//! create those containers again (they are missing by then), after the new
//! network.
//!
//! Invariants: only networks of the file that are not external get here
//! (a broken external network gets a warning and nothing else); a
//! network is recreated only when every container attached to it may go:
//! a container of a service left out of the plan, an orphan (unless
//! `remove_orphans`), or any container under `--no-recreate` keeps the
//! network as it is, with a warning; a container attached to several
//! recreated networks is removed once, before each of their removals.

use std::collections::BTreeSet;

use super::diff::{describe_changes, settings_changes};
use super::resources::Resources;
use super::service::removal;
use super::{Action, Builder, Change, PlanOptions};
use crate::backend::{ObservedContainer, ObservedNetwork, ObservedState};
use crate::desired::{Desired, DesiredNetwork};

/// A drifted network that may be recreated, with the changed settings.
struct Recreation<'a> {
    net: &'a DesiredNetwork,
    changes: Vec<Change>,
    attached: Vec<&'a ObservedContainer>,
}

impl Builder {
    /// Recreates each of the `drifted` networks (desired, observed: changed
    /// settings or broken) whose attached containers may all go, and warns
    /// about the others.
    pub(super) fn recreate_networks<'a>(
        &mut self,
        desired: &Desired,
        observed: &'a ObservedState,
        options: &PlanOptions,
        selected: &BTreeSet<&str>,
        drifted: &[(&'a DesiredNetwork, &ObservedNetwork)],
    ) -> Resources {
        let mut todo = Vec::new();
        for (net, o) in drifted {
            let attached: Vec<&ObservedContainer> = observed
                .containers
                .iter()
                .filter(|c| c.networks.contains(&net.name))
                .collect();
            let blockers = blockers(desired, options, selected, &attached);
            if blockers.is_empty() {
                todo.push(Recreation {
                    net,
                    changes: recreation_causes(net, o),
                    attached,
                });
            } else {
                self.warnings.push(format!(
                    "network {} {}; it is kept as is: {}",
                    net.name,
                    trouble(net, o),
                    blockers.join("; ")
                ));
            }
        }
        let mut out = Resources::default();
        self.remove_attached(desired, observed, &todo, &mut out);
        for r in &todo {
            let deps: Vec<usize> = r
                .attached
                .iter()
                .filter_map(|c| out.removed.get(&c.name).copied())
                .collect();
            let action = Action::RemoveNetwork {
                name: r.net.name.clone(),
            };
            let id = format!("network:{}", r.net.key);
            let removed = self.push(id, action, r.changes.clone(), deps);
            let created = self.create_network(r.net, r.changes.clone(), vec![removed]);
            out.created.insert(r.net.name.clone(), created);
        }
        out
    }

    /// Warns about each external network of the file (those `wanted`) that
    /// the host reports broken: it is not ours to recreate.
    pub(super) fn warn_broken_external(
        &mut self,
        desired: &Desired,
        observed: &ObservedState,
        wanted: impl Fn(&str) -> bool,
    ) {
        for net in desired
            .networks
            .values()
            .filter(|n| n.external && wanted(&n.name))
        {
            let found = observed.networks.iter().find(|o| o.name == net.name);
            if let Some(reason) = found.and_then(|o| o.broken.as_ref()) {
                self.warnings.push(format!(
                    "external network {} is unusable ({reason}); it is kept as is, because \
                     external networks are never recreated: recreate it by hand",
                    net.name
                ));
            }
        }
    }

    /// Stops and removes every container attached to a network of `todo`,
    /// once each, in observed order, recording the removals in `out`.
    fn remove_attached(
        &mut self,
        desired: &Desired,
        observed: &ObservedState,
        todo: &[Recreation<'_>],
        out: &mut Resources,
    ) {
        for c in &observed.containers {
            let keys: Vec<&str> = todo
                .iter()
                .filter(|r| r.attached.iter().any(|a| a.name == c.name))
                .map(|r| r.net.key.as_str())
                .collect();
            if keys.is_empty() {
                continue;
            }
            let (cause, again) = removal_cause(desired, observed, c, &keys);
            let indices = self.emit(removal(c, cause.clone(), 0), &[]);
            out.removed
                .extend(indices.last().map(|&i| (c.name.clone(), i)));
            if again {
                out.replaced.insert(c.name.clone(), cause);
            }
        }
    }
}

/// Why the network `o` is recreated as `net`: first what broke it
/// (`network: bridge rc-… is missing → recreated`), then each changed
/// setting.
fn recreation_causes(net: &DesiredNetwork, o: &ObservedNetwork) -> Vec<Change> {
    let field = format!("networks.{}", net.key);
    let broken = o
        .broken
        .iter()
        .map(|reason| Change::new("network", reason.clone(), "recreated".to_string()));
    broken
        .chain(settings_changes(&field, &o.config, &net.config))
        .collect()
}

/// What is wrong with the network `o`, for a warning: `is unusable (…)`,
/// `differs from the stack file (…)`, or both.
fn trouble(net: &DesiredNetwork, o: &ObservedNetwork) -> String {
    let mut parts = Vec::new();
    if let Some(reason) = &o.broken {
        parts.push(format!("is unusable ({reason})"));
    }
    if o.config != net.config {
        let changes = describe_changes(&o.config, &net.config);
        parts.push(format!("differs from the stack file ({changes})"));
    }
    parts.join(" and ")
}

/// Why a container attached to the networks `keys` goes, and whether it
/// is created again: a replica of the file comes back (`networks.<key>:
/// present → recreated`); a replica above the scale or an orphan does not.
fn removal_cause(
    desired: &Desired,
    observed: &ObservedState,
    c: &ObservedContainer,
    keys: &[&str],
) -> (Vec<Change>, bool) {
    let Some(svc) = desired.service(&c.service) else {
        let field = format!("services.{}", c.service);
        let cause = Change::new(&field, "present".to_string(), "absent".to_string());
        return (vec![cause], false);
    };
    if !svc.replicas.iter().any(|r| r.number == c.replica) {
        let had = observed
            .containers
            .iter()
            .filter(|o| o.service == c.service)
            .map(|o| o.replica)
            .max()
            .unwrap_or_default();
        let wanted = svc.replicas.len().to_string();
        return (vec![Change::new("scale", had.to_string(), wanted)], false);
    }
    let cause = keys
        .iter()
        .map(|k| {
            let field = format!("networks.{k}");
            Change::new(&field, "present".to_string(), "recreated".to_string())
        })
        .collect();
    (cause, true)
}

/// Why the plan may not remove each of the `attached` containers; empty
/// when it may remove them all.
fn blockers(
    desired: &Desired,
    options: &PlanOptions,
    selected: &BTreeSet<&str>,
    attached: &[&ObservedContainer],
) -> Vec<String> {
    attached
        .iter()
        .filter_map(|c| {
            let (name, service) = (&c.name, &c.service);
            if desired.service(service).is_none() {
                (!options.remove_orphans).then(|| {
                    format!(
                        "orphan container {name} (service {service}) is attached to it \
                         (--remove-orphans removes it, and lets the network be recreated)"
                    )
                })
            } else if !selected.contains(service.as_str()) {
                Some(format!(
                    "container {name} of service {service}, which this plan leaves alone, \
                     is attached to it (plan every service to recreate the network)"
                ))
            } else if options.no_recreate {
                Some(format!(
                    "container {name} is attached to it and --no-recreate keeps it"
                ))
            } else {
                None
            }
        })
        .collect()
}
