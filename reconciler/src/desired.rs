//! The desired state: what the host should hold for a normalized
//! [`Project`], in host names (`<project>-<service>-<n>`, `<project>_<key>`).
//!
//! Invariants: the config hash of a service is the one `rcompose config
//! --hash` prints ([`rcompose_spec::config_hash`]); the projection kept next
//! to it is the same JSON the hash covers, so a diff of two projections names
//! exactly the fields that changed the hash.

use std::collections::BTreeMap;

use rcompose_spec::Project;
use rcompose_spec::model::{MountType, Network, Service, Volume};
use serde::{Deserialize, Serialize};

use crate::backend::{
    COMPOSE_NETWORK, COMPOSE_VOLUME, LABEL_NETWORK, LABEL_VOLUME, Labels, NetworkConfig,
    VolumeConfig, resource_labels,
};

/// Everything the host should hold for one project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Desired {
    /// Project name.
    pub project: String,
    /// Services in stack-file order.
    pub services: Vec<DesiredService>,
    /// Networks, by key.
    pub networks: BTreeMap<String, DesiredNetwork>,
    /// Named volumes, by key.
    pub volumes: BTreeMap<String, DesiredVolume>,
}

/// One replica of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replica {
    /// Replica number, from 1.
    pub number: u32,
    /// Container name.
    pub name: String,
}

/// A service as the host should run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredService {
    /// Service name.
    pub name: String,
    /// Image reference (`<project>-<service>` when the file names none).
    pub image: String,
    /// Config hash ([`rcompose_spec::config_hash`]).
    pub config_hash: String,
    /// The JSON the hash covers.
    pub config: serde_json::Value,
    /// Replicas, numbered from 1.
    pub replicas: Vec<Replica>,
    /// Full names of the networks joined, sorted.
    pub networks: Vec<String>,
    /// Full names of the named volumes mounted, sorted.
    pub volumes: Vec<String>,
    /// Services this one depends on.
    pub depends_on: Vec<String>,
}

/// A network as the host should hold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredNetwork {
    /// Key in the stack file.
    pub key: String,
    /// Full name (`name:` or `<project>_<key>`).
    pub name: String,
    /// Created outside the stack: never created or removed.
    pub external: bool,
    /// Labels to create it with.
    pub labels: Labels,
    /// Settings.
    pub config: NetworkConfig,
}

/// A named volume as the host should hold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredVolume {
    /// Key in the stack file.
    pub key: String,
    /// Full name (`name:` or `<project>_<key>`).
    pub name: String,
    /// Created outside the stack: never created or removed.
    pub external: bool,
    /// Labels to create it with.
    pub labels: Labels,
    /// Settings.
    pub config: VolumeConfig,
}

impl Desired {
    /// The desired state of a normalized, validated project.
    pub fn from_project(project: &Project) -> Self {
        let name = project.name.clone().unwrap_or_default();
        let networks: BTreeMap<_, _> = project
            .networks
            .iter()
            .map(|(k, n)| (k.clone(), desired_network(&name, k, n)))
            .collect();
        let volumes: BTreeMap<_, _> = project
            .volumes
            .iter()
            .map(|(k, v)| (k.clone(), desired_volume(&name, k, v)))
            .collect();
        let services = project
            .services
            .iter()
            .map(|(s, svc)| desired_service(&name, s, svc, &networks, &volumes))
            .collect();
        Self {
            project: name,
            services,
            networks,
            volumes,
        }
    }

    /// The service called `name`.
    pub fn service(&self, name: &str) -> Option<&DesiredService> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Every image reference used, sorted and without duplicates.
    pub fn images(&self) -> Vec<String> {
        let mut images: Vec<String> = self.services.iter().map(|s| s.image.clone()).collect();
        images.sort();
        images.dedup();
        images
    }
}

fn full_name(project: &str, key: &str, name: Option<&String>) -> String {
    name.cloned().unwrap_or_else(|| format!("{project}_{key}"))
}

fn desired_network(project: &str, key: &str, network: &Network) -> DesiredNetwork {
    let mut labels = resource_labels(project, (LABEL_NETWORK, COMPOSE_NETWORK), key);
    labels.extend(user_labels(&network.labels));
    let subnets = network
        .ipam
        .iter()
        .flat_map(|i| i.config.iter().filter_map(|p| p.subnet.clone()))
        .collect();
    DesiredNetwork {
        key: key.to_string(),
        name: full_name(project, key, network.name.as_ref()),
        external: network.external,
        labels,
        config: NetworkConfig {
            driver: network.driver.clone(),
            driver_opts: network.driver_opts.clone().into_iter().collect(),
            internal: network.internal,
            enable_ipv6: network.enable_ipv6.unwrap_or(false),
            subnets,
        },
    }
}

fn desired_volume(project: &str, key: &str, volume: &Volume) -> DesiredVolume {
    let mut labels = resource_labels(project, (LABEL_VOLUME, COMPOSE_VOLUME), key);
    labels.extend(user_labels(&volume.labels));
    DesiredVolume {
        key: key.to_string(),
        name: full_name(project, key, volume.name.as_ref()),
        external: volume.external,
        labels,
        config: VolumeConfig {
            driver: volume.driver.clone(),
            driver_opts: volume.driver_opts.clone().into_iter().collect(),
        },
    }
}

fn user_labels<'a>(labels: impl IntoIterator<Item = (&'a String, &'a Option<String>)>) -> Labels {
    labels
        .into_iter()
        .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
        .collect()
}

fn desired_service(
    project: &str,
    name: &str,
    svc: &Service,
    networks: &BTreeMap<String, DesiredNetwork>,
    volumes: &BTreeMap<String, DesiredVolume>,
) -> DesiredService {
    let count = svc
        .deploy
        .as_ref()
        .and_then(|d| d.replicas)
        .or(svc.scale)
        .unwrap_or(1);
    let replicas = (1..=u32::try_from(count).unwrap_or(u32::MAX))
        .map(|n| Replica {
            number: n,
            name: svc
                .container_name
                .clone()
                .unwrap_or_else(|| format!("{project}-{name}-{n}")),
        })
        .collect();
    let mut net_names: Vec<String> = svc
        .networks
        .keys()
        .map(|k| {
            networks
                .get(k)
                .map_or_else(|| format!("{project}_{k}"), |n| n.name.clone())
        })
        .collect();
    net_names.sort();
    let mut vol_names: Vec<String> = svc
        .volumes
        .iter()
        .filter(|v| v.kind == MountType::Volume)
        .filter_map(|v| v.source.as_ref().and_then(|s| volumes.get(s)))
        .map(|v| v.name.clone())
        .collect();
    vol_names.sort();
    vol_names.dedup();
    DesiredService {
        name: name.to_string(),
        image: svc
            .image
            .clone()
            .unwrap_or_else(|| format!("{project}-{name}")),
        config_hash: rcompose_spec::config_hash(svc),
        config: projection(svc),
        replicas,
        networks: net_names,
        volumes: vol_names,
        depends_on: svc.depends_on.keys().cloned().collect(),
    }
}

/// The service as JSON: what the hash covers.
fn projection(svc: &Service) -> serde_json::Value {
    rcompose_spec::project::hash_projection(svc)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Loads `yaml` as project `shop` through the real loader.
    pub(crate) fn load(yaml: &str) -> Desired {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("compose.yaml");
        std::fs::write(&file, yaml).expect("write stack file");
        let opts = rcompose_spec::LoadOptions {
            files: vec![file],
            project_name: Some("shop".into()),
            working_dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        let loaded = rcompose_spec::load(&opts).expect("valid stack file");
        Desired::from_project(&loaded.project)
    }

    #[test]
    fn replicas_are_named_after_project_service_and_number() {
        let d = load("services:\n  web:\n    image: nginx\n    scale: 3\n");
        let names: Vec<_> = d.services[0]
            .replicas
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(names, ["shop-web-1", "shop-web-2", "shop-web-3"]);
    }

    #[test]
    fn the_config_hash_is_the_one_rcompose_config_prints() {
        let yaml = "services:\n  web:\n    image: nginx\n    environment:\n      A: b\n";
        let d = load(yaml);
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("compose.yaml");
        std::fs::write(&file, yaml).expect("write");
        let opts = rcompose_spec::LoadOptions {
            files: vec![file],
            project_name: Some("shop".into()),
            working_dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        let p = rcompose_spec::load(&opts).expect("load").project;
        assert_eq!(
            d.services[0].config_hash,
            rcompose_spec::config_hash(&p.services["web"])
        );
        assert_eq!(
            d.services[0].config_hash,
            rcompose_spec::config_hash(&d.services[0].config)
        );
    }

    #[test]
    fn networks_and_volumes_get_the_project_prefix_unless_named_or_external() {
        let d = load(
            "services:\n  web:\n    image: nginx\n    networks: [front, outside]\n    volumes: [data:/d]\n\
             networks:\n  front: {}\n  outside:\n    external: true\n    name: corp\n\
             volumes:\n  data: {}\n",
        );
        assert_eq!(d.networks["front"].name, "shop_front");
        assert_eq!(d.networks["outside"].name, "corp");
        assert!(d.networks["outside"].external);
        assert_eq!(d.volumes["data"].name, "shop_data");
        assert_eq!(d.services[0].networks, ["corp", "shop_front"]);
        assert_eq!(d.services[0].volumes, ["shop_data"]);
    }

    #[test]
    fn scale_and_depends_on_stay_out_of_the_projection() {
        let d = load(
            "services:\n  db:\n    image: pg\n  web:\n    image: nginx\n    scale: 2\n    depends_on: [db]\n",
        );
        let web = d.service("web").expect("web");
        assert_eq!(web.depends_on, ["db"]);
        assert!(web.config.get("scale").is_none());
        assert!(web.config.get("depends_on").is_none());
    }
}
