//! The project-wide operations that services wait on: creating missing
//! networks and volumes, and pulling images.
//!
//! Invariants: external networks and volumes are never created, removed
//! or recreated (a broken external network is only warned about); a
//! network whose settings drifted or that is broken on the host is
//! recreated (see [`super::networks`]) or, when that would touch a
//! container the plan must leave alone, kept with a warning; a volume whose
//! settings drifted is always kept, with a warning, because recreating it
//! deletes its data.

use std::collections::{BTreeMap, BTreeSet};

use super::diff::describe_changes;
use super::{Action, Builder, Change, PlanOptions, PullPolicy};
use crate::backend::{NetworkSpec, ObservedState, VolumeSpec};
use crate::desired::{Desired, DesiredNetwork};

/// What the project-wide operations left for the rest of the plan.
#[derive(Debug, Default)]
pub(super) struct Resources {
    /// Full name of a network or volume → index of the op that creates it.
    pub created: BTreeMap<String, usize>,
    /// Containers removed so that their networks can be recreated: name →
    /// index of the removal.
    pub removed: BTreeMap<String, usize>,
    /// Of those, the ones to create again: name → why.
    pub replaced: BTreeMap<String, Vec<Change>>,
}

impl Builder {
    /// Creates missing networks and volumes and recreates drifted or broken
    /// networks (only those in `used` when it is given); in the result,
    /// `created` maps full name → index of the op that makes it.
    pub(super) fn resources(
        &mut self,
        desired: &Desired,
        observed: &ObservedState,
        options: &PlanOptions,
        selected: &BTreeSet<&str>,
        used: Option<&BTreeSet<&str>>,
    ) -> Resources {
        let wanted = |name: &str| used.is_none_or(|u| u.contains(name));
        let mut created = BTreeMap::new();
        let mut drifted = Vec::new();
        for net in desired
            .networks
            .values()
            .filter(|n| !n.external && wanted(&n.name))
        {
            match observed.networks.iter().find(|o| o.name == net.name) {
                None => {
                    let i = self.create_network(net, vec![], vec![]);
                    created.insert(net.name.clone(), i);
                }
                Some(o) if o.config != net.config || o.broken.is_some() => {
                    drifted.push((net, o));
                }
                Some(_) => {}
            }
        }
        self.warn_broken_external(desired, observed, wanted);
        let mut out = self.recreate_networks(desired, observed, options, selected, &drifted);
        out.created.extend(created);
        self.volumes(desired, observed, used, &mut out.created);
        out
    }

    /// Appends the creation of `net`; returns its index.
    pub(super) fn create_network(
        &mut self,
        net: &DesiredNetwork,
        cause: Vec<Change>,
        deps: Vec<usize>,
    ) -> usize {
        let spec = NetworkSpec {
            name: net.name.clone(),
            labels: net.labels.clone(),
            config: net.config.clone(),
        };
        let id = format!("network:{}", net.key);
        self.push(id, Action::CreateNetwork(spec), cause, deps)
    }

    /// Creates missing volumes (only those in `used` when it is given),
    /// recording full name → op index in `created`; warns about drifted ones.
    fn volumes(
        &mut self,
        desired: &Desired,
        observed: &ObservedState,
        used: Option<&BTreeSet<&str>>,
        created: &mut BTreeMap<String, usize>,
    ) {
        let wanted = |name: &str| used.is_none_or(|u| u.contains(name));
        for vol in desired
            .volumes
            .values()
            .filter(|v| !v.external && wanted(&v.name))
        {
            match observed.volumes.iter().find(|o| o.name == vol.name) {
                None => {
                    let spec = VolumeSpec {
                        name: vol.name.clone(),
                        labels: vol.labels.clone(),
                        config: vol.config.clone(),
                    };
                    let id = format!("volume:{}", vol.key);
                    let i = self.push(id, Action::CreateVolume(spec), vec![], vec![]);
                    created.insert(vol.name.clone(), i);
                }
                Some(o) if o.config != vol.config => self.warnings.push(format!(
                    "volume {} differs from the stack file ({}); it is kept as is, because \
                     recreating it would delete the data it holds (to apply the change, back \
                     the data up and remove the volume with `down --volumes`)",
                    vol.name,
                    describe_changes(&o.config, &vol.config)
                )),
                Some(_) => {}
            }
        }
    }

    /// Pulls the images of the `selected` services per `policy`; returns
    /// reference → op index.
    pub(super) fn images(
        &mut self,
        desired: &Desired,
        observed: &ObservedState,
        policy: PullPolicy,
        selected: &BTreeSet<&str>,
    ) -> BTreeMap<String, usize> {
        let mut pulls = BTreeMap::new();
        let references: BTreeSet<&String> = desired
            .services
            .iter()
            .filter(|s| selected.contains(s.name.as_str()))
            .map(|s| &s.image)
            .collect();
        for reference in references {
            let present = matches!(observed.images.get(reference), Some(Some(_)));
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
                pulls.insert(reference.clone(), i);
            }
        }
        pulls
    }
}
