//! Which services a plan covers (`up web` takes web's dependencies along
//! unless `--no-deps`) and in what order they are planned.
//!
//! Invariants: a dependency is planned before its dependents; services not
//! selected are left out entirely, so they are never touched nor taken for
//! orphans.

use std::collections::BTreeSet;

use super::PlanOptions;
use crate::desired::{Desired, DesiredService};

/// The services to plan: all when `options.services` is empty, else the
/// named ones and (unless `no_deps`) their transitive dependencies. Names
/// not in the file give a warning.
pub(super) fn selected<'a>(
    desired: &'a Desired,
    options: &PlanOptions,
    warnings: &mut Vec<String>,
) -> BTreeSet<&'a str> {
    if options.services.is_empty() {
        return desired.services.iter().map(|s| s.name.as_str()).collect();
    }
    let mut todo: Vec<&DesiredService> = Vec::new();
    for name in &options.services {
        match desired.service(name) {
            Some(svc) => todo.push(svc),
            None => warnings.push(format!(
                "service {name} is not in the stack file; nothing to do for it"
            )),
        }
    }
    let mut out = BTreeSet::new();
    while let Some(svc) = todo.pop() {
        if !out.insert(svc.name.as_str()) || options.no_deps {
            continue;
        }
        todo.extend(
            svc.depends_on
                .iter()
                .filter_map(|d| desired.service(&d.service)),
        );
    }
    out
}

/// The full names of the networks and volumes that `selected` services
/// use; `None` when every service is selected (then every resource of the
/// file is planned, used or not).
pub(super) fn used_resources<'a>(
    desired: &'a Desired,
    options: &PlanOptions,
    selected: &BTreeSet<&str>,
) -> Option<BTreeSet<&'a str>> {
    if options.services.is_empty() {
        return None;
    }
    let used = desired
        .services
        .iter()
        .filter(|s| selected.contains(s.name.as_str()))
        .flat_map(|s| s.networks.iter().chain(&s.volumes))
        .map(String::as_str)
        .collect();
    Some(used)
}

/// Services with their dependencies first, otherwise in file order.
pub(super) fn service_order(desired: &Desired) -> Vec<&DesiredService> {
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut order = Vec::new();
    while order.len() < desired.services.len() {
        let ready = desired.services.iter().find(|s| {
            !placed.contains(s.name.as_str())
                && s.depends_on.iter().all(|d| {
                    placed.contains(d.service.as_str()) || desired.service(&d.service).is_none()
                })
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
