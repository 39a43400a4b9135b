//! The reconciler's backends on the real host: containers from the runtime,
//! networks from netctl, volumes, configs and secrets from the volume crate,
//! images from the content store. Every call is synchronous; network calls
//! run on a current-thread tokio runtime of their own, so the executor's
//! threads can share one `HostBackend`.
//!
//! What the planner compares and the host records do not keep (a network's
//! or volume's declared settings, a container's service projection) is
//! stored in a label at creation and read back when observing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use rcompose_netctl::dns::files::ExtraHost;
use rcompose_netctl::manager::{ConnectRequest, FilesRequest, NetworkRequest};
use rcompose_netctl::model::PortMapping;
use rcompose_reconciler::backend::{
    BackendError, ContainerBackend, ContainerSpec, ContainerStatus, Health, ImageBackend, Labels,
    NetworkBackend, NetworkConfig, NetworkSpec, ObservedContainer, ObservedNetwork, ObservedVolume,
    VolumeBackend, VolumeConfig, VolumeSpec, matches,
};
use rcompose_reconciler::backend::{
    LABEL_CONFIG_HASH, LABEL_NETWORK, LABEL_REPLICA, LABEL_SERVICE,
};
use rcompose_reconciler::desired::files_digest;
use rcompose_runtime::config::{COPY_UP_OPTION, MountSpec};
use rcompose_runtime::container::{ContainerError, ContainerInfo, Status};
use rcompose_runtime::health::HealthStatus;
use rcompose_runtime::manager::Runtime;
use rcompose_runtime::store::Store;
use rcompose_spec::Project;
use rcompose_volumes::plan::{self, PlanInput};
use rcompose_volumes::{LinuxMounter, SecretFiles, VolumePaths, VolumeRequest};

use super::translate::{self, Context, NetMode};
use crate::host::{HostArgs, Net, block_on};
use crate::image::{self, PullArgs};
use crate::network::{file_mounts, port_mappings};
use crate::volume::{self, Vols};

/// Label holding the service projection a container was created from.
pub const LABEL_SPEC: &str = "io.rcompose.spec";
/// Label holding the declared settings of a network or volume.
pub const LABEL_SETTINGS: &str = "io.rcompose.settings";

/// The whole host, for one project.
pub struct HostBackend {
    host: HostArgs,
    runtime: Runtime,
    net: Net,
    vols: Vols,
    secrets: SecretFiles,
    project: Option<Project>,
    name: String,
    dir: PathBuf,
    env: BTreeMap<String, String>,
    insecure_registries: Vec<String>,
    /// Labels put on the containers this backend creates besides their own
    /// (the git commit they were synced from); never compared by the planner.
    extra_labels: BTreeMap<String, String>,
}

/// Label of a container created by `sync`: the commit its stack came from.
pub const LABEL_GIT_COMMIT: &str = "io.rcompose.git-commit";

fn failed(action: &str, target: &str) -> impl FnOnce(anyhow::Error) -> BackendError + use<> {
    let (action, target) = (action.to_string(), target.to_string());
    move |e| BackendError::Failed {
        action,
        target,
        source: e.into(),
    }
}

impl HostBackend {
    /// The backends of project `name` on `host`; `project` is the loaded
    /// stack (`None` for `down` from labels alone, which creates nothing).
    pub fn new(
        host: &HostArgs,
        name: &str,
        project: Option<Project>,
        dir: PathBuf,
        env: BTreeMap<String, String>,
        insecure_registries: Vec<String>,
    ) -> anyhow::Result<HostBackend> {
        let paths = VolumePaths::new(&host.root, &host.run_dir);
        Ok(HostBackend {
            host: host.clone(),
            runtime: host.runtime()?,
            net: host.networks()?,
            vols: host.volumes(),
            secrets: SecretFiles::new(paths, LinuxMounter),
            project,
            name: name.to_string(),
            dir,
            env,
            insecure_registries,
            extra_labels: BTreeMap::new(),
        })
    }

    /// Labels for every container created from now on.
    pub fn set_extra_labels(&mut self, labels: BTreeMap<String, String>) {
        self.extra_labels = labels;
    }

    /// The runtime, for commands that act on containers directly.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// For each service with configs or secrets, the digest of their
    /// resolved content ([`file_digests`]); empty without a stack file.
    pub fn file_digests(&self) -> BTreeMap<String, String> {
        match self.context() {
            Ok(ctx) => file_digests(&ctx, &self.env),
            Err(_) => BTreeMap::new(),
        }
    }

    fn observe_container(&self, info: &ContainerInfo) -> ObservedContainer {
        let labels = &info.record.config.labels;
        let state = &info.state;
        let status = match state.status {
            Status::Created => ContainerStatus::Created,
            Status::Running => ContainerStatus::Running,
            Status::Paused => ContainerStatus::Paused,
            Status::Restarting => ContainerStatus::Restarting,
            Status::Exited => ContainerStatus::Exited,
            Status::Dead => ContainerStatus::Dead,
        };
        let health = state.health.as_ref().map(|h| match h.status {
            HealthStatus::Starting => Health::Starting,
            HealthStatus::Healthy => Health::Healthy,
            HealthStatus::Unhealthy => Health::Unhealthy,
        });
        let mut networks: Vec<String> = self
            .net
            .endpoints_of_container(&info.record.id)
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.network)
            .collect();
        networks.sort();
        ObservedContainer {
            name: info.record.id.clone(),
            service: labels.get(LABEL_SERVICE).cloned().unwrap_or_default(),
            replica: labels
                .get(LABEL_REPLICA)
                .and_then(|r| r.parse().ok())
                .unwrap_or_default(),
            config_hash: labels.get(LABEL_CONFIG_HASH).cloned().unwrap_or_default(),
            image_digest: Some(info.record.image.id.clone()),
            status,
            health,
            exit_code: state
                .exit_code
                .filter(|_| status == ContainerStatus::Exited),
            networks,
            labels: labels
                .iter()
                .filter(|(k, _)| k.as_str() != LABEL_SPEC)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            config: labels
                .get(LABEL_SPEC)
                .and_then(|s| serde_json::from_str(s).ok()),
        }
    }

    fn context(&self) -> anyhow::Result<Context<'_>> {
        let project = self
            .project
            .as_ref()
            .context("no stack file loaded: containers cannot be created")?;
        Ok(Context {
            project,
            name: &self.name,
            dir: &self.dir,
        })
    }

    fn make_container(&self, spec: &ContainerSpec) -> anyhow::Result<()> {
        let ctx = self.context()?;
        let svc = ctx
            .project
            .services
            .get(&spec.service)
            .with_context(|| format!("service {} is not in the stack file", spec.service))?;
        let mut labels: BTreeMap<String, String> = svc
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
            .collect();
        labels.extend(self.extra_labels.clone());
        labels.extend(spec.labels.clone());
        labels.insert(LABEL_SPEC.into(), spec.config.to_string());
        let mut config = translate::container_config(svc, &spec.image, labels)?;
        let mut mounts = self.service_mounts(&ctx, spec, svc)?;
        let requests = translate::file_requests(&ctx, &spec.service, svc)?;
        if !requests.is_empty() {
            let files = requests
                .iter()
                .map(|r| rcompose_volumes::secrets::resolve(r, &self.env))
                .collect::<Result<Vec<_>, _>>()?;
            mounts.extend(self.secrets.deliver(&spec.name, &files)?.mounts);
        }
        match translate::net_mode(&ctx, &spec.service, svc)? {
            NetMode::Host => config.network_host = true,
            NetMode::None => config.netns_path = Some(self.net.ensure_netns(&spec.name)?),
            NetMode::Container(other) => {
                let netns = self.net.paths().netns(&other);
                if !rcompose_netctl::netns::is_mounted(&netns) {
                    anyhow::bail!("container {other} has no network namespace to share");
                }
                config.netns_path = Some(netns);
                mounts.extend(file_mounts(&self.net.paths().container_files(&other)));
            }
            NetMode::Bridge(joins) => {
                config.netns_path = Some(self.net.ensure_netns(&spec.name)?);
                let ports = port_mappings(&svc.ports)?;
                let files = block_on(self.join(spec, svc, &joins, ports))??;
                mounts.extend(file_mounts(&files));
            }
        }
        mounts.sort_by_key(|m| std::path::Path::new(&m.target).components().count());
        config.mounts = mounts;
        self.runtime.create(&spec.name, config)?;
        Ok(())
    }

    async fn join(
        &self,
        spec: &ContainerSpec,
        svc: &rcompose_spec::model::Service,
        joins: &[translate::Join],
        ports: Vec<PortMapping>,
    ) -> anyhow::Result<PathBuf> {
        let dns_servers = svc
            .dns
            .iter()
            .map(|d| {
                d.parse()
                    .with_context(|| format!("invalid dns server {d:?}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        for join in joins {
            let request = ConnectRequest {
                container_id: spec.name.clone(),
                container_name: spec.name.clone(),
                network: join.network.clone(),
                aliases: join.aliases.clone(),
                ipv4_address: join.ipv4,
                ipv6_address: join.ipv6,
                mac_address: join.mac.clone(),
                ports: if join.primary {
                    ports.clone()
                } else {
                    Vec::new()
                },
                dns_servers: dns_servers.clone(),
            };
            self.net.connect(&request).await?;
        }
        let gateway = match joins.first() {
            Some(j) => rcompose_netctl::manager::nameserver_of(&self.net.inspect(&j.network)?),
            None => None,
        };
        let mut extra_hosts = Vec::new();
        for (host, ips) in &svc.extra_hosts {
            for ip in ips {
                extra_hosts.push(ExtraHost::parse(&format!("{host}={ip}"), gateway)?);
            }
        }
        Ok(self.net.write_container_files(&FilesRequest {
            container_id: spec.name.clone(),
            hostname: svc.hostname.clone().unwrap_or_else(|| spec.name.clone()),
            domainname: svc.domainname.clone(),
            extra_hosts,
            dns_search: svc.dns_search.clone(),
            dns_options: svc.dns_opt.clone(),
        })?)
    }

    fn service_mounts(
        &self,
        ctx: &Context<'_>,
        spec: &ContainerSpec,
        svc: &rcompose_spec::model::Service,
    ) -> anyhow::Result<Vec<MountSpec>> {
        let named: BTreeMap<String, String> = ctx
            .project
            .volumes
            .iter()
            .map(|(k, v)| {
                let full = v
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("{}_{k}", self.name));
                (k.clone(), full)
            })
            .collect();
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let planned = plan::plan_mounts(&PlanInput {
            service: &spec.service,
            volumes: &svc.volumes,
            tmpfs: &svc.tmpfs,
            project_dir: ctx.dir,
            home: home.as_deref(),
            named_volumes: &named,
            volumes_from: &[],
        })?;
        let mut out = Vec::new();
        for mount in &planned {
            out.push(volume::to_mount_spec(&self.vols, &spec.name, mount, true)?);
        }
        for entry in &svc.volumes_from {
            let from = plan::parse_volumes_from(&spec.service, entry)?;
            let other = if from.container {
                from.name.clone()
            } else {
                translate::first_container(ctx, &from.name)?
            };
            let info = self.runtime.inspect(&other)?;
            // Its volumes and binds; not its tmpfs mounts, name-resolution
            // files, configs or secrets.
            let private = self.secrets.dir(&other);
            for m in info.record.config.mounts {
                let shared = m.kind != "tmpfs"
                    && !Path::new(&m.source).starts_with(&private)
                    && !["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]
                        .contains(&m.target.as_str());
                let ours = out.iter().any(|o| o.target == m.target);
                if shared && !ours {
                    let mut options: Vec<String> = m
                        .options
                        .into_iter()
                        .filter(|o| o != COPY_UP_OPTION && o != "rw" && o != "ro")
                        .collect();
                    options.push(if from.read_only { "ro" } else { "rw" }.into());
                    out.push(MountSpec { options, ..m });
                }
            }
        }
        Ok(out)
    }

    /// Undoes what `make_container` did around the runtime (best effort).
    fn release(&self, name: &str) {
        if let Err(e) = block_on(self.net.remove_container(name)) {
            tracing::warn!(container = name, error = %e, "network cleanup failed");
        }
        if let Err(e) = self.secrets.remove(name) {
            tracing::warn!(container = name, error = %e, "secret cleanup failed");
        }
    }
}

impl ContainerBackend for HostBackend {
    fn list_containers(&self, selector: &Labels) -> Result<Vec<ObservedContainer>, BackendError> {
        let all = self
            .runtime
            .list()
            .map_err(|e| failed("list", "containers")(e.into()))?;
        Ok(all
            .iter()
            .filter(|c| matches(&c.record.config.labels, selector))
            .map(|c| self.observe_container(c))
            .collect())
    }

    fn create_container(&self, spec: &ContainerSpec) -> Result<(), BackendError> {
        let made = self.make_container(spec);
        if made.is_err() {
            self.release(&spec.name);
        }
        made.map_err(failed("create container", &spec.name))
    }

    fn start_container(&self, name: &str) -> Result<(), BackendError> {
        self.runtime
            .start(name)
            .map(drop)
            .map_err(|e| failed("start container", name)(e.into()))
    }

    fn stop_container(&self, name: &str, timeout: Option<Duration>) -> Result<(), BackendError> {
        self.runtime
            .stop(name, timeout)
            .map_err(|e| failed("stop container", name)(e.into()))
    }

    fn remove_container(&self, name: &str, volumes: bool) -> Result<(), BackendError> {
        // Its network and secrets go while the runtime removes its files:
        // a veth's delete waits for the kernel (an RCU barrier), the files'
        // for the disk.
        self.runtime
            .remove_alongside(name, false, || self.release(name))
            .map_err(|e| failed("remove container", name)(e.into()))?;
        if volumes {
            volume::remove_anonymous(&self.host, name)
                .map_err(failed("remove the anonymous volumes of", name))?;
        }
        Ok(())
    }

    fn inspect_container(&self, name: &str) -> Result<ObservedContainer, BackendError> {
        match self.runtime.inspect(name) {
            Ok(info) => Ok(self.observe_container(&info)),
            Err(ContainerError::NotFound(_)) => Err(BackendError::NotFound {
                kind: "container",
                name: name.to_string(),
            }),
            Err(e) => Err(failed("inspect container", name)(e.into())),
        }
    }
}

impl NetworkBackend for HostBackend {
    fn list_networks(&self, selector: &Labels) -> Result<Vec<ObservedNetwork>, BackendError> {
        let all = self
            .net
            .list()
            .map_err(|e| failed("list", "networks")(e.into()))?;
        let ours: Vec<_> = all
            .into_iter()
            .filter(|n| matches(&n.labels, selector))
            .collect();
        let broken =
            missing_bridges(&self.net, &ours).map_err(failed("look up", "network bridges"))?;
        Ok(ours
            .into_iter()
            .zip(broken)
            .map(|(n, broken)| ObservedNetwork {
                broken,
                config: n
                    .labels
                    .get(LABEL_SETTINGS)
                    .and_then(|s| serde_json::from_str(s).ok())
                    .unwrap_or_default(),
                labels: n
                    .labels
                    .into_iter()
                    .filter(|(k, _)| k != LABEL_SETTINGS)
                    .collect(),
                name: n.name,
            })
            .collect())
    }

    fn create_network(&self, spec: &NetworkSpec) -> Result<(), BackendError> {
        let made = (|| -> anyhow::Result<()> {
            let request = network_request(spec, self.project.as_ref())?;
            block_on(self.net.ensure_network(&request))??;
            Ok(())
        })();
        made.map_err(failed("create network", &spec.name))
    }

    fn remove_network(&self, name: &str) -> Result<(), BackendError> {
        let removed = (|| -> anyhow::Result<()> {
            // Containers that are not running (stopped, exited, removed
            // meanwhile; `inspect` marks one whose monitor is gone dead)
            // are detached; a running one refuses the removal.
            let endpoints = self.net.paths().endpoints_of(name)?;
            let stopped: Vec<String> = endpoints
                .into_iter()
                .filter(|e| match self.runtime.inspect(&e.container_id) {
                    Ok(info) => !info.state.status.is_live(),
                    Err(e) => matches!(e, ContainerError::NotFound(_)),
                })
                .map(|e| e.container_id)
                .collect();
            block_on(self.net.remove_network_detaching(name, &stopped))??;
            Ok(())
        })();
        removed.map_err(failed("remove network", name))
    }
}

/// For each of `records`, why it cannot carry traffic on this host: its
/// bridge is missing (deleted by hand, or gone with a reboot while the
/// records stayed); `None` when the bridge is there. The planner recreates
/// a broken network, which removes the records and makes a new bridge.
fn missing_bridges(
    net: &Net,
    records: &[rcompose_netctl::model::NetworkRecord],
) -> anyhow::Result<Vec<Option<String>>> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let check = || {
        block_on(async {
            let mut out = Vec::with_capacity(records.len());
            for r in records {
                let present = net.link_exists(&r.bridge).await?;
                out.push((!present).then(|| format!("bridge {} is missing", r.bridge)));
            }
            anyhow::Ok(out)
        })
    };
    // On a thread of its own: observe also runs inside `watch`'s runtime,
    // where starting another runtime on the same thread panics.
    std::thread::scope(|s| s.spawn(check).join())
        .map_err(|_| anyhow::anyhow!("the lookup of network bridges panicked"))??
}

/// For each service of `ctx` with configs or secrets, [`files_digest`] over
/// their resolved content, so that a content change recreates its
/// containers. A service whose files do not resolve (a missing file or
/// variable) is left out: its create fails later with the resolver's error.
fn file_digests(ctx: &Context<'_>, env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let digest = |name: &str, svc: &rcompose_spec::model::Service| -> Option<String> {
        let requests = translate::file_requests(ctx, name, svc).ok()?;
        let pairs = requests
            .iter()
            .map(|r| rcompose_volumes::secrets::resolve(r, env).map(|f| (f.target, f.digest)))
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        (!pairs.is_empty()).then(|| files_digest(&pairs))
    };
    ctx.project
        .services
        .iter()
        .filter_map(|(name, svc)| Some((name.clone(), digest(name, svc)?)))
        .collect()
}

/// The netctl request of a planned network; the declared settings go into
/// a label so that the next observe reads back exactly what was asked.
fn network_request(
    spec: &NetworkSpec,
    project: Option<&Project>,
) -> anyhow::Result<NetworkRequest> {
    let config: &NetworkConfig = &spec.config;
    if let Some(driver) = config.driver.as_deref().filter(|d| *d != "bridge") {
        anyhow::bail!("network driver {driver:?} is not supported (only bridge)");
    }
    let key = spec.labels.get(LABEL_NETWORK);
    let declared = project.and_then(|p| key.and_then(|k| p.networks.get(k)));
    let ipam = declared
        .and_then(|n| n.ipam.as_ref())
        .map(|i| {
            i.config
                .iter()
                .map(|c| rcompose_netctl::ipam::IpamRequest {
                    subnet: c.subnet.clone(),
                    ip_range: c.ip_range.clone(),
                    gateway: c.gateway.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let mtu = config
        .driver_opts
        .get("com.docker.network.driver.mtu")
        .map(|m| m.parse().with_context(|| format!("invalid mtu {m:?}")))
        .transpose()?;
    let mut labels = spec.labels.clone();
    labels.insert(LABEL_SETTINGS.into(), serde_json::to_string(config)?);
    Ok(NetworkRequest {
        name: spec.name.clone(),
        bridge: config
            .driver_opts
            .get("com.docker.network.bridge.name")
            .cloned(),
        mtu,
        internal: config.internal,
        enable_ipv6: config.enable_ipv6,
        ipam,
        labels,
        external: false,
    })
}

impl VolumeBackend for HostBackend {
    fn list_volumes(&self, selector: &Labels) -> Result<Vec<ObservedVolume>, BackendError> {
        let all = self
            .vols
            .list()
            .map_err(|e| failed("list", "volumes")(e.into()))?;
        Ok(all
            .into_iter()
            .filter(|v| !v.is_anonymous() && matches(&v.labels, selector))
            .map(|v| ObservedVolume {
                config: v
                    .labels
                    .get(LABEL_SETTINGS)
                    .and_then(|s| serde_json::from_str(s).ok())
                    .unwrap_or_default(),
                labels: v
                    .labels
                    .into_iter()
                    .filter(|(k, _)| k != LABEL_SETTINGS)
                    .collect(),
                name: v.name,
            })
            .collect())
    }

    fn create_volume(&self, spec: &VolumeSpec) -> Result<(), BackendError> {
        let made = (|| -> anyhow::Result<()> {
            let config: &VolumeConfig = &spec.config;
            let mut labels = spec.labels.clone();
            labels.insert(LABEL_SETTINGS.into(), serde_json::to_string(config)?);
            self.vols.ensure(&VolumeRequest {
                name: spec.name.clone(),
                driver: config.driver.clone(),
                driver_opts: config.driver_opts.clone(),
                labels,
                external: false,
            })?;
            Ok(())
        })();
        made.map_err(failed("create volume", &spec.name))
    }

    fn remove_volume(&self, name: &str) -> Result<(), BackendError> {
        let removed = volume::users_of(&self.runtime, &self.vols, name)
            .and_then(|users| Ok(self.vols.remove(name, &users)?));
        removed.map_err(failed("remove volume", name))
    }
}

impl ImageBackend for HostBackend {
    fn image_digest(&self, reference: &str) -> Result<Option<String>, BackendError> {
        let store = Store::open(&self.host.root)
            .map_err(|e| failed("open", "the image store")(e.into()))?;
        Ok(store.get(&image::normalize(reference)).ok().map(|r| r.id))
    }

    fn pull_image(&self, reference: &str) -> Result<String, BackendError> {
        let pulled = Store::open(&self.host.root)
            .map_err(anyhow::Error::from)
            .and_then(|store| {
                let args = PullArgs {
                    image: reference.to_string(),
                    insecure_registries: self.insecure_registries.clone(),
                    quiet: true,
                };
                image::pull(&store, &args)
            });
        pulled
            .map(|r| r.id)
            .map_err(failed("pull image", reference))
    }
}

#[cfg(test)]
mod file_digest_tests {
    use super::*;

    fn load(dir: &std::path::Path, yaml: &str) -> Project {
        let file = dir.join("compose.yaml");
        std::fs::write(&file, yaml).expect("write");
        let opts = rcompose_spec::LoadOptions {
            files: vec![file],
            project_name: Some("shop".into()),
            working_dir: dir.to_path_buf(),
            ..Default::default()
        };
        rcompose_spec::load(&opts).expect("valid").project
    }

    /// The digests of `yaml` in `dir`, with `TOKEN` set to `token` when given.
    fn digests(dir: &std::path::Path, yaml: &str, token: Option<&str>) -> BTreeMap<String, String> {
        let project = load(dir, yaml);
        let ctx = Context {
            project: &project,
            name: "shop",
            dir,
        };
        let env = token
            .map(|t| BTreeMap::from([("TOKEN".to_string(), t.to_string())]))
            .unwrap_or_default();
        file_digests(&ctx, &env)
    }

    const STACK: &str = "services:\n  web:\n    image: nginx\n    configs: [site]\n    secrets: [token]\n  \
                         db:\n    image: pg\nconfigs:\n  site:\n    file: ./site.conf\n\
                         secrets:\n  token:\n    environment: TOKEN\n";

    #[test]
    fn a_changed_file_or_variable_changes_the_digest_of_the_services_using_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("site.conf"), "v1").expect("write");
        let first = digests(dir.path(), STACK, Some("a"));
        assert_eq!(first.keys().collect::<Vec<_>>(), ["web"]);
        assert_eq!(digests(dir.path(), STACK, Some("a")), first);
        assert_ne!(digests(dir.path(), STACK, Some("b")), first);
        std::fs::write(dir.path().join("site.conf"), "v2").expect("write");
        assert_ne!(digests(dir.path(), STACK, Some("a")), first);
    }

    #[test]
    fn a_service_whose_files_do_not_resolve_gets_no_digest() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(
            digests(dir.path(), STACK, Some("a")).is_empty(),
            "missing file"
        );
        std::fs::write(dir.path().join("site.conf"), "v1").expect("write");
        assert!(
            digests(dir.path(), STACK, None).is_empty(),
            "missing variable"
        );
    }
}
