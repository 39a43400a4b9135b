//! The desired state: what the host should hold for a normalized
//! [`Project`], in host names (`<project>-<service>-<n>`, `<project>_<key>`).
//!
//! Invariants: the config hash of a service is the one `rcompose config
//! --hash` prints ([`rcompose_spec::config_hash`]); the projection kept next
//! to it is the same JSON the hash covers, so a diff of two projections names
//! exactly the fields that changed the hash.
//!
//! Two facts are derived here rather than in the planner: a service is a
//! *job* (it runs to completion, so an exit with code 0 is its converged
//! state) when another service depends on it with
//! `service_completed_successfully` or when it says so with the extension
//! `x-rcompose: {job: true}`; and a service *has a healthcheck* when its
//! file sets one that is not disabled. A healthcheck that only the image
//! declares is not known here: the runtime reports it through
//! [`crate::backend::ObservedContainer::health`], and waits honour that.
//! The same extension map carries `restart_on_unhealthy: true`: the planner
//! then restarts the service's running containers that report unhealthy
//! (Docker never does, moby#28400). Both flags are read as a boolean or the
//! string `"true"`; anything else is `false`.
//!
//! The content of configs and secrets is not read here (the crate does no
//! I/O): the caller adds one digest per service with
//! [`Desired::with_file_digests`], computed with [`files_digest`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rcompose_spec::Project;
use rcompose_spec::model::{DependencyCondition, MountType, Network, Service, Volume};
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
    /// Services this one depends on, in stack-file order.
    pub depends_on: Vec<Dependency>,
    /// Runs to completion: a container that exited with code 0 is
    /// converged, not stopped (see the module comment).
    #[serde(default)]
    pub job: bool,
    /// The stack file gives it a healthcheck that is not disabled (the
    /// image may declare one too; only the runtime knows that).
    #[serde(default)]
    pub has_healthcheck: bool,
    /// Its running containers that report unhealthy are restarted
    /// (`x-rcompose: {restart_on_unhealthy: true}`; see the module comment).
    #[serde(default)]
    pub restart_on_unhealthy: bool,
    /// Digest of the content of its configs and secrets
    /// ([`files_digest`]), set by the caller with
    /// [`Desired::with_file_digests`]; `None` when it has none or they
    /// could not be read (then content changes recreate nothing).
    #[serde(default)]
    pub files_digest: Option<String>,
}

/// One entry of `depends_on`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    /// The service depended on.
    pub service: String,
    /// When it counts as ready.
    pub condition: Condition,
    /// A dependency that cannot be satisfied fails the dependent; when
    /// `false` it only warns.
    pub required: bool,
    /// Restart the dependent when this dependency is recreated or restarted.
    pub restart: bool,
}

/// When a dependency counts as ready, spelled as Compose spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Condition {
    /// Its containers run (or a job's exited with code 0).
    #[default]
    #[serde(rename = "service_started")]
    Started,
    /// Its containers report healthy.
    #[serde(rename = "service_healthy")]
    Healthy,
    /// Its containers exited with code 0.
    #[serde(rename = "service_completed_successfully")]
    CompletedSuccessfully,
}

impl Condition {
    /// Compose's spelling: `service_healthy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "service_started",
            Self::Healthy => "service_healthy",
            Self::CompletedSuccessfully => "service_completed_successfully",
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<DependencyCondition> for Condition {
    fn from(c: DependencyCondition) -> Self {
        match c {
            DependencyCondition::ServiceStarted => Self::Started,
            DependencyCondition::ServiceHealthy => Self::Healthy,
            DependencyCondition::ServiceCompletedSuccessfully => Self::CompletedSuccessfully,
        }
    }
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
        let mut services: Vec<DesiredService> = project
            .services
            .iter()
            .map(|(s, svc)| desired_service(&name, s, svc, &networks, &volumes))
            .collect();
        let awaited: BTreeSet<String> = services
            .iter()
            .flat_map(|s| &s.depends_on)
            .filter(|d| d.condition == Condition::CompletedSuccessfully)
            .map(|d| d.service.clone())
            .collect();
        for svc in &mut services {
            svc.job |= awaited.contains(&svc.name);
        }
        Self {
            project: name,
            services,
            networks,
            volumes,
        }
    }

    /// Sets the digest of the configs' and secrets' content of each service
    /// named in `digests` (service → digest). The planner cannot read
    /// files, so the caller computes them, with [`files_digest`].
    pub fn with_file_digests(mut self, digests: BTreeMap<String, String>) -> Self {
        for svc in &mut self.services {
            if let Some(digest) = digests.get(&svc.name) {
                svc.files_digest = Some(digest.clone());
            }
        }
        self
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

/// `sha256:<hex>` over the `(target, content digest)` pairs of a service's
/// configs and secrets, in sorted order so that the order of declaration
/// does not matter; each part is length-prefixed, so no two different
/// lists give the same input to the hash.
pub fn files_digest(files: &[(String, String)]) -> String {
    use sha2::{Digest, Sha256};
    let mut sorted: Vec<&(String, String)> = files.iter().collect();
    sorted.sort();
    let mut hasher = Sha256::new();
    for (target, digest) in sorted {
        for part in [target, digest] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
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
        depends_on: svc
            .depends_on
            .iter()
            .map(|(service, d)| Dependency {
                service: service.clone(),
                condition: d.condition.into(),
                required: d.required,
                restart: d.restart,
            })
            .collect(),
        job: extension_flag(svc, "job"),
        has_healthcheck: svc.healthcheck.as_ref().is_some_and(|h| {
            !h.disable && !h.test.is_empty() && h.test.first().is_some_and(|t| t != "NONE")
        }),
        restart_on_unhealthy: extension_flag(svc, "restart_on_unhealthy"),
        files_digest: None,
    }
}

/// `x-rcompose: {<key>: true}` (a boolean or the string `"true"`).
fn extension_flag(svc: &Service, key: &str) -> bool {
    let flag = svc.extensions.get("x-rcompose").and_then(|x| x.get(key));
    match flag {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
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
        let deps: Vec<&str> = web.depends_on.iter().map(|d| d.service.as_str()).collect();
        assert_eq!(deps, ["db"]);
        assert_eq!(web.depends_on[0].condition, Condition::Started);
        assert!(web.depends_on[0].required && !web.depends_on[0].restart);
        assert!(web.config.get("scale").is_none());
        assert!(web.config.get("depends_on").is_none());
    }
}

#[cfg(test)]
mod files_tests {
    use super::tests::load;
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(t, d)| (t.to_string(), d.to_string()))
            .collect()
    }

    #[test]
    fn the_files_digest_ignores_order_and_follows_targets_and_contents() {
        let a = files_digest(&pairs(&[
            ("/a", "sha256:1"),
            ("/run/secrets/b", "sha256:2"),
        ]));
        let b = files_digest(&pairs(&[
            ("/run/secrets/b", "sha256:2"),
            ("/a", "sha256:1"),
        ]));
        assert_eq!(a, b);
        assert!(a.starts_with("sha256:") && a.len() == "sha256:".len() + 64);
        let content = files_digest(&pairs(&[
            ("/a", "sha256:9"),
            ("/run/secrets/b", "sha256:2"),
        ]));
        let moved = files_digest(&pairs(&[
            ("/c", "sha256:1"),
            ("/run/secrets/b", "sha256:2"),
        ]));
        assert_ne!(a, content);
        assert_ne!(a, moved);
        // Bytes moved between a target and a digest give another input.
        assert_ne!(
            files_digest(&pairs(&[("/ab", "c")])),
            files_digest(&pairs(&[("/a", "bc")]))
        );
    }

    #[test]
    fn with_file_digests_sets_the_services_named_and_leaves_the_others_none() {
        let d = load("services:\n  web:\n    image: nginx\n  db:\n    image: pg\n");
        assert!(d.services.iter().all(|s| s.files_digest.is_none()));
        let digests = BTreeMap::from([
            ("web".to_string(), "sha256:1".to_string()),
            ("gone".to_string(), "sha256:2".to_string()),
        ]);
        let d = d.with_file_digests(digests);
        let digest = |n: &str| d.service(n).expect("service").files_digest.clone();
        assert_eq!(digest("web").as_deref(), Some("sha256:1"));
        assert_eq!(digest("db"), None);
    }
}

#[cfg(test)]
mod dependency_tests {
    use super::tests::load;
    use super::*;

    #[test]
    fn long_form_depends_on_keeps_condition_required_and_restart() {
        let d = load(
            "services:\n  db:\n    image: pg\n  cache:\n    image: redis\n  web:\n    image: nginx\n    depends_on:\n      db:\n        condition: service_healthy\n        restart: true\n      cache:\n        condition: service_started\n        required: false\n",
        );
        let web = d.service("web").expect("web");
        assert_eq!(
            web.depends_on,
            [
                Dependency {
                    service: "db".into(),
                    condition: Condition::Healthy,
                    required: true,
                    restart: true,
                },
                Dependency {
                    service: "cache".into(),
                    condition: Condition::Started,
                    required: false,
                    restart: false,
                },
            ]
        );
    }

    #[test]
    fn a_service_awaited_with_completed_successfully_is_a_job() {
        let d = load(
            "services:\n  migrate:\n    image: app\n  web:\n    image: app\n    depends_on:\n      migrate:\n        condition: service_completed_successfully\n",
        );
        assert!(d.service("migrate").expect("migrate").job);
        assert!(!d.service("web").expect("web").job);
    }

    #[test]
    fn the_x_rcompose_extension_declares_a_job() {
        let d = load(
            "services:\n  seed:\n    image: app\n    x-rcompose:\n      job: true\n  web:\n    image: app\n",
        );
        assert!(d.service("seed").expect("seed").job);
        assert!(!d.service("web").expect("web").job);
    }

    #[test]
    fn the_x_rcompose_extension_asks_for_a_restart_on_unhealthy() {
        let d = load(
            "services:\n  a:\n    image: app\n    x-rcompose:\n      restart_on_unhealthy: true\n  b:\n    image: app\n    x-rcompose:\n      restart_on_unhealthy: \"true\"\n      job: true\n  c:\n    image: app\n    x-rcompose:\n      job: true\n  d:\n    image: app\n",
        );
        let wants = |n: &str| d.service(n).expect("service").restart_on_unhealthy;
        assert!(wants("a") && wants("b"));
        assert!(!wants("c") && !wants("d"));
        assert!(!d.service("a").expect("a").job);
    }

    #[test]
    fn a_disabled_or_none_healthcheck_is_no_healthcheck() {
        let d = load(
            "services:\n  a:\n    image: x\n    healthcheck:\n      test: [CMD, \"true\"]\n  b:\n    image: x\n    healthcheck:\n      disable: true\n  c:\n    image: x\n    healthcheck:\n      test: [NONE]\n  d:\n    image: x\n",
        );
        let has = |n: &str| d.service(n).expect("service").has_healthcheck;
        assert!(has("a"));
        assert!(!has("b") && !has("c") && !has("d"));
    }

    #[test]
    fn conditions_serialize_as_compose_spells_them() {
        let json = serde_json::to_string(&Condition::CompletedSuccessfully).expect("json");
        assert_eq!(json, "\"service_completed_successfully\"");
        assert_eq!(Condition::Healthy.to_string(), "service_healthy");
    }
}
