//! The operations of one service, before they get plan indices: create,
//! start, recreate or restart each replica, remove the replicas above the
//! scale.
//!
//! Invariants: a replica gets at most one operation besides the start that
//! follows its creation; a running replica whose config is unchanged is
//! never touched unless a `restart: true` dependency changed or it reports
//! unhealthy and its service asks for `restart_on_unhealthy` (one still in
//! its start period, `starting`, is left alone); a container of a job that
//! exited with code 0 is converged; a container removed earlier in the plan
//! (its network is recreated) is created again with the cause of its
//! removal.

use std::collections::BTreeMap;

use super::diff::{config_changes, short_digest};
use super::{Action, Change, PlanOptions};
use crate::backend::{
    ContainerSpec, ContainerStatus, Health, LABEL_FILES_DIGEST, ObservedContainer, ObservedState,
    container_labels,
};
use crate::desired::{Desired, DesiredService, Replica};

/// An operation of a batch, with its dependencies still relative.
#[derive(Debug)]
pub(super) struct Pending {
    /// Resource id.
    pub id: String,
    /// What to do.
    pub action: Action,
    /// Why.
    pub cause: Vec<Change>,
    /// Index, within the same batch, of the operation it follows.
    pub after: Option<usize>,
    /// Whether it needs the service's networks, volumes, image and
    /// dependencies first (what starts a container does; removals do not).
    pub needs_deps: bool,
}

impl Pending {
    fn new(id: &str, action: Action, cause: Vec<Change>) -> Self {
        Self {
            id: id.to_string(),
            action,
            cause,
            after: None,
            needs_deps: true,
        }
    }

    /// Whether the service is up once this is done (its "final" ops).
    pub fn brings_up(&self) -> bool {
        matches!(
            self.action,
            Action::StartContainer { .. }
                | Action::RecreateContainer(_)
                | Action::RestartContainer { .. }
        )
    }
}

/// Ops of `svc`; `restart` holds the causes that make its running replicas
/// restart (its `restart: true` dependencies that changed), empty when none;
/// `replaced` the causes of the containers removed earlier in the plan to
/// be created again (by name). `observed` no longer holds those.
pub(super) fn service_ops(
    desired: &Desired,
    svc: &DesiredService,
    observed: &ObservedState,
    options: &PlanOptions,
    restart: &[Change],
    replaced: &BTreeMap<String, Vec<Change>>,
) -> Vec<Pending> {
    let mut out = Vec::new();
    let mine: Vec<&ObservedContainer> = observed
        .containers
        .iter()
        .filter(|c| c.service == svc.name)
        .collect();
    for replica in &svc.replicas {
        let id = format!("service:{}:{}", svc.name, replica.number);
        let spec = container_spec(desired, svc, replica);
        let Some(current) = mine.iter().find(|c| c.replica == replica.number) else {
            let cause = replaced.get(&replica.name).cloned().unwrap_or_default();
            out.push(Pending::new(
                &id,
                Action::CreateContainer(spec),
                cause.clone(),
            ));
            let start = Action::StartContainer {
                name: replica.name.clone(),
                service: svc.name.clone(),
            };
            out.push(Pending {
                after: Some(out.len() - 1),
                needs_deps: false,
                ..Pending::new(&id, start, cause)
            });
            continue;
        };
        if let Some((action, cause)) = replica_op(svc, current, spec, observed, options, restart) {
            out.push(Pending::new(&id, action, cause));
        }
    }
    scale_down(svc, &mine, &mut out);
    out
}

/// The one operation an existing replica needs, if any.
fn replica_op(
    svc: &DesiredService,
    current: &ObservedContainer,
    spec: ContainerSpec,
    observed: &ObservedState,
    options: &PlanOptions,
    restart: &[Change],
) -> Option<(Action, Vec<Change>)> {
    let cause = recreate_cause(svc, current, observed, options);
    if !cause.is_empty() {
        return Some((Action::RecreateContainer(spec), cause));
    }
    let name = current.name.clone();
    let service = svc.name.clone();
    if current.status.is_live() {
        let mut cause = unhealthy(svc, current);
        cause.extend_from_slice(restart);
        let restart_it = current.status == ContainerStatus::Running && !cause.is_empty();
        return restart_it.then_some((Action::RestartContainer { name, service }, cause));
    }
    if svc.job && completed(current) {
        return None;
    }
    let cause = vec![Change::new(
        "status",
        status_name(current),
        "running".to_string(),
    )];
    Some((Action::StartContainer { name, service }, cause))
}

/// `health: unhealthy → restarted` when `current` reports unhealthy and
/// its service asks to be restarted then; empty otherwise.
fn unhealthy(svc: &DesiredService, current: &ObservedContainer) -> Vec<Change> {
    let restart = svc.restart_on_unhealthy && current.health == Some(Health::Unhealthy);
    if !restart {
        return vec![];
    }
    vec![Change::new(
        "health",
        "unhealthy".to_string(),
        "restarted".to_string(),
    )]
}

/// Exited with code 0: a job that did its work.
pub(super) fn completed(c: &ObservedContainer) -> bool {
    c.status == ContainerStatus::Exited && c.exit_code == Some(0)
}

/// Removes the replicas above the scale, highest number first.
fn scale_down(svc: &DesiredService, mine: &[&ObservedContainer], out: &mut Vec<Pending>) {
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
        let batch = removal(c, vec![cause], out.len());
        out.extend(batch);
    }
}

/// Stops (when live) and removes `c`, both ops with `cause`; `base` is the
/// batch index the first of the returned ops will get. The removal is
/// always the last op.
pub(super) fn removal(c: &ObservedContainer, cause: Vec<Change>, base: usize) -> Vec<Pending> {
    let id = format!("service:{}:{}", c.service, c.replica);
    let mut out = Vec::new();
    if c.status.is_live() {
        let stop = Action::StopContainer {
            name: c.name.clone(),
            service: c.service.clone(),
        };
        out.push(Pending {
            needs_deps: false,
            ..Pending::new(&id, stop, cause.clone())
        });
    }
    let remove = Action::RemoveContainer {
        name: c.name.clone(),
        service: c.service.clone(),
        volumes: false,
    };
    out.push(Pending {
        after: (!out.is_empty()).then_some(base),
        needs_deps: false,
        ..Pending::new(&id, remove, cause)
    });
    out
}

/// `created`, `exited (code 1)`.
fn status_name(c: &ObservedContainer) -> String {
    let name = serde_json::to_value(c.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    match (c.status, c.exit_code) {
        (ContainerStatus::Exited, Some(code)) => format!("{name} (code {code})"),
        _ => name,
    }
}

/// The spec of `replica`; its labels carry the files digest when known,
/// so that the next observe reads it back.
fn container_spec(desired: &Desired, svc: &DesiredService, replica: &Replica) -> ContainerSpec {
    let mut labels = container_labels(
        &desired.project,
        &svc.name,
        replica.number,
        &svc.config_hash,
    );
    if let Some(digest) = &svc.files_digest {
        labels.insert(LABEL_FILES_DIGEST.to_string(), digest.clone());
    }
    ContainerSpec {
        name: replica.name.clone(),
        service: svc.name.clone(),
        replica: replica.number,
        image: svc.image.clone(),
        config_hash: svc.config_hash.clone(),
        config: svc.config.clone(),
        networks: svc.networks.clone(),
        files_digest: svc.files_digest.clone(),
        labels,
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
    if let Some(change) = files_change(svc, current) {
        return vec![change];
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

/// The content of a config or secret changed: both digests are known and
/// differ. A container made without the label, or a service whose digest
/// the caller could not compute, never differs.
fn files_change(svc: &DesiredService, current: &ObservedContainer) -> Option<Change> {
    let (old, new) = (current.files_digest()?, svc.files_digest.as_deref()?);
    (old != new).then(|| {
        Change::new(
            "configs/secrets content",
            short_digest(old),
            short_digest(new),
        )
    })
}
