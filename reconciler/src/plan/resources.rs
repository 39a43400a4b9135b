//! The project-wide operations that services wait on: creating missing
//! networks and volumes, and pulling images.
//!
//! Invariants: external networks and volumes are never created; a network
//! or volume whose settings drifted is kept, with a warning, never
//! recreated under running containers.

use std::collections::{BTreeMap, BTreeSet};

use super::diff::describe_changes;
use super::{Action, Builder, Change, PullPolicy};
use crate::backend::{NetworkSpec, ObservedState, VolumeSpec};
use crate::desired::Desired;

impl Builder {
    /// Creates missing networks and volumes (only those in `used` when it
    /// is given); returns full name → op index.
    pub(super) fn resources(
        &mut self,
        desired: &Desired,
        observed: &ObservedState,
        used: Option<&BTreeSet<&str>>,
    ) -> BTreeMap<String, usize> {
        let wanted = |name: &str| used.is_none_or(|u| u.contains(name));
        let mut created = BTreeMap::new();
        for net in desired
            .networks
            .values()
            .filter(|n| !n.external && wanted(&n.name))
        {
            match observed.networks.iter().find(|o| o.name == net.name) {
                None => {
                    let spec = NetworkSpec {
                        name: net.name.clone(),
                        labels: net.labels.clone(),
                        config: net.config.clone(),
                    };
                    let id = format!("network:{}", net.key);
                    let i = self.push(id, Action::CreateNetwork(spec), vec![], vec![]);
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
                    "volume {} differs from the stack file ({}); it is kept as is (its data would be lost)",
                    vol.name,
                    describe_changes(&o.config, &vol.config)
                )),
                Some(_) => {}
            }
        }
        created
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
