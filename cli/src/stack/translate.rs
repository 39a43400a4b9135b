//! A stack-file service as the runtime, the network manager and the volume
//! manager take it: pure functions from a normalized [`Service`] to a
//! [`ContainerConfig`], the networks to join, and the configs and secrets
//! to deliver. Nothing here touches the host.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context as _, bail};
use rcompose_runtime::config::{ContainerConfig, Healthcheck, RestartPolicy};
use rcompose_spec::Project;
use rcompose_spec::model::Service;
use rcompose_volumes::{FileKind, FileRequest, FileSource};

use crate::container::parse_restart;

/// What a service's container is made from besides the service itself.
pub struct Context<'a> {
    /// The normalized project (top-level networks, configs, secrets).
    pub project: &'a Project,
    /// Project name.
    pub name: &'a str,
    /// Directory relative paths resolve against.
    pub dir: &'a Path,
}

/// How a container gets its network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetMode {
    /// Joins these networks through its own namespace.
    Bridge(Vec<Join>),
    /// The host's namespace.
    Host,
    /// A namespace with only `lo`.
    None,
    /// The namespace of this container.
    Container(String),
}

/// One network a container joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    /// Full network name.
    pub network: String,
    /// Names on this network besides the container name.
    pub aliases: Vec<String>,
    /// `ipv4_address`.
    pub ipv4: Option<IpAddr>,
    /// `ipv6_address`.
    pub ipv6: Option<IpAddr>,
    /// `mac_address`.
    pub mac: Option<String>,
    /// Whether the published ports go through this network (the first).
    pub primary: bool,
}

/// The runtime settings of one container of `svc`.
pub fn container_config(
    svc: &Service,
    image: &str,
    labels: BTreeMap<String, String>,
) -> anyhow::Result<ContainerConfig> {
    let limits = svc
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.limits.as_ref());
    let memory = svc
        .mem_limit
        .map(|b| b.0)
        .or_else(|| limits.and_then(|l| l.memory).map(|b| b.0));
    let mut ulimits = BTreeMap::new();
    for (name, limit) in &svc.ulimits {
        let soft = u64::try_from(limit.soft).with_context(|| format!("ulimits.{name}.soft"))?;
        let hard = u64::try_from(limit.hard).with_context(|| format!("ulimits.{name}.hard"))?;
        ulimits.insert(name.clone(), (soft, hard));
    }
    let logging = svc.logging.as_ref();
    let log_option = |key: &str| {
        logging
            .and_then(|l| l.options.get(key))
            .and_then(Clone::clone)
    };
    let log_max_size = log_option("max-size")
        .map(|s| rcompose_spec::model::ByteSize::parse(&s).map(|b| b.0))
        .transpose()
        .map_err(|e| anyhow::anyhow!("logging.options.max-size: {e:?}"))?;
    let log_max_files = log_option("max-file")
        .map(|s| s.parse::<u32>())
        .transpose()
        .context("logging.options.max-file")?;
    Ok(ContainerConfig {
        image: image.to_string(),
        entrypoint: svc.entrypoint.clone(),
        command: svc.command.clone(),
        env: svc
            .environment
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect(),
        working_dir: svc.working_dir.clone(),
        user: svc.user.clone(),
        group_add: svc.group_add.clone(),
        hostname: svc.hostname.clone(),
        domainname: svc.domainname.clone(),
        labels,
        read_only: svc.read_only,
        privileged: svc.privileged,
        cap_add: svc.cap_add.clone(),
        cap_drop: svc.cap_drop.clone(),
        security_opt: svc.security_opt.clone(),
        init: svc.init.unwrap_or(false),
        stop_signal: svc.stop_signal.clone(),
        stop_grace_period: svc.stop_grace_period.map(|d| d.0),
        memory: memory.map(|m| i64::try_from(m).unwrap_or(i64::MAX)),
        memory_swap: svc.memswap_limit,
        cpus: svc.cpus.or_else(|| limits.and_then(|l| l.cpus)),
        cpu_shares: svc.cpu_shares.and_then(|s| u64::try_from(s).ok()),
        pids_limit: svc.pids_limit.or_else(|| limits.and_then(|l| l.pids)),
        ulimits,
        sysctls: svc
            .sysctls
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
            .collect(),
        shm_size: svc.shm_size.map(|b| b.0),
        mounts: Vec::new(),
        netns_path: None,
        network_host: false,
        tty: svc.tty,
        stdin_open: svc.stdin_open,
        restart: match &svc.restart {
            None => RestartPolicy::No,
            Some(text) => parse_restart(text)?,
        },
        healthcheck: svc.healthcheck.as_ref().map(healthcheck),
        log_max_size,
        log_max_files,
    })
}

fn healthcheck(h: &rcompose_spec::model::Healthcheck) -> Healthcheck {
    let d = |v: &Option<rcompose_spec::model::Duration>| v.map(|d| d.0);
    Healthcheck {
        test: if h.disable {
            vec!["NONE".into()]
        } else {
            h.test.clone()
        },
        interval: d(&h.interval),
        timeout: d(&h.timeout),
        retries: h.retries.and_then(|r| u32::try_from(r).ok()),
        start_period: d(&h.start_period),
        start_interval: d(&h.start_interval),
    }
}

/// The container name of replica 1 of `service` (what `service:x` means).
pub fn first_container(ctx: &Context<'_>, service: &str) -> anyhow::Result<String> {
    let svc = ctx
        .project
        .services
        .get(service)
        .with_context(|| format!("service {service} not found"))?;
    Ok(svc
        .container_name
        .clone()
        .unwrap_or_else(|| format!("{}-{service}-1", ctx.name)))
}

/// How the container named `name` of service `svc_name` gets its network.
pub fn net_mode(ctx: &Context<'_>, svc_name: &str, svc: &Service) -> anyhow::Result<NetMode> {
    match svc.network_mode.as_deref() {
        Some("host") => return Ok(NetMode::Host),
        Some("none") => return Ok(NetMode::None),
        Some(mode) if mode.starts_with("service:") => {
            return Ok(NetMode::Container(first_container(
                ctx,
                &mode["service:".len()..],
            )?));
        }
        Some(mode) if mode.starts_with("container:") => {
            return Ok(NetMode::Container(mode["container:".len()..].to_string()));
        }
        Some("bridge" | "default") | None => {}
        Some(other) => bail!("services.{svc_name}.network_mode: {other:?} is not supported"),
    }
    let mut joins = Vec::new();
    for (i, (key, attach)) in svc.networks.iter().enumerate() {
        let network = ctx
            .project
            .networks
            .get(key)
            .and_then(|n| n.name.clone())
            .unwrap_or_else(|| format!("{}_{key}", ctx.name));
        let mut aliases = vec![svc_name.to_string()];
        let mut join = Join {
            network,
            aliases: Vec::new(),
            ipv4: None,
            ipv6: None,
            mac: svc.mac_address.clone().filter(|_| i == 0),
            primary: i == 0,
        };
        if let Some(a) = attach {
            aliases.extend(a.aliases.iter().cloned());
            let ip = |text: &Option<String>, field: &str| -> anyhow::Result<Option<IpAddr>> {
                text.as_deref()
                    .map(|t| {
                        t.parse()
                            .with_context(|| format!("services.{svc_name}.networks.{key}.{field}"))
                    })
                    .transpose()
            };
            join.ipv4 = ip(&a.ipv4_address, "ipv4_address")?;
            join.ipv6 = ip(&a.ipv6_address, "ipv6_address")?;
            if a.mac_address.is_some() {
                join.mac = a.mac_address.clone();
            }
        }
        if let Some(h) = &svc.hostname {
            aliases.push(h.clone());
        }
        aliases.dedup();
        join.aliases = aliases;
        joins.push(join);
    }
    Ok(NetMode::Bridge(joins))
}

/// The service's `configs:` and `secrets:` as requests to the volume crate's
/// file delivery.
pub fn file_requests(
    ctx: &Context<'_>,
    svc_name: &str,
    svc: &Service,
) -> anyhow::Result<Vec<FileRequest>> {
    let mut out = Vec::new();
    let id = |text: &Option<String>, what: &str| -> anyhow::Result<Option<u32>> {
        text.as_deref()
            .map(|t| {
                t.parse()
                    .with_context(|| format!("services.{svc_name}: invalid {what} {t:?}"))
            })
            .transpose()
    };
    for (kind, refs) in [
        (FileKind::Config, &svc.configs),
        (FileKind::Secret, &svc.secrets),
    ] {
        for r in refs {
            let (content, environment, file) = match kind {
                FileKind::Config => {
                    let c = ctx.project.configs.get(&r.source).with_context(|| {
                        format!(
                            "services.{svc_name}.configs: config {} not declared",
                            r.source
                        )
                    })?;
                    if c.external {
                        bail!(
                            "services.{svc_name}.configs: external config {} is not supported",
                            r.source
                        );
                    }
                    (c.content.clone(), c.environment.clone(), c.file.clone())
                }
                FileKind::Secret => {
                    let s = ctx.project.secrets.get(&r.source).with_context(|| {
                        format!(
                            "services.{svc_name}.secrets: secret {} not declared",
                            r.source
                        )
                    })?;
                    if s.external {
                        bail!(
                            "services.{svc_name}.secrets: external secret {} is not supported",
                            r.source
                        );
                    }
                    (None, s.environment.clone(), s.file.clone())
                }
            };
            let source = match (content, environment, file) {
                (Some(c), _, _) => FileSource::Content(c),
                (_, Some(e), _) => FileSource::Environment(e),
                (_, _, Some(f)) => FileSource::File(ctx.dir.join(f)),
                _ => bail!("{kind} {} has no file, environment or content", r.source),
            };
            out.push(FileRequest {
                kind,
                name: r.source.clone(),
                source,
                target: r.target.clone(),
                uid: id(&r.uid, "uid")?,
                gid: id(&r.gid, "gid")?,
                mode: r.mode,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn load(yaml: &str) -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("compose.yaml");
        std::fs::write(&file, yaml).expect("write");
        let opts = rcompose_spec::LoadOptions {
            files: vec![file],
            project_name: Some("shop".into()),
            working_dir: dir.path().to_path_buf(),
            environment: BTreeMap::from([("PASS".to_string(), "hunter2".to_string())])
                .into_iter()
                .collect(),
            ..Default::default()
        };
        rcompose_spec::load(&opts).expect("valid").project
    }

    #[test]
    fn a_service_becomes_the_runtime_settings_docker_would_use() {
        let p = load(
            "services:\n  web:\n    image: nginx\n    command: [sh, -c, 'echo hi']\n    environment:\n      A: b\n    \
             mem_limit: 64m\n    restart: on-failure:3\n    init: true\n    stop_grace_period: 3s\n    \
             healthcheck:\n      test: wget -q localhost\n      interval: 2s\n      retries: 5\n    \
             logging:\n      options:\n        max-size: 1m\n        max-file: '3'\n",
        );
        let c = container_config(&p.services["web"], "nginx", BTreeMap::new()).unwrap();
        assert_eq!(c.command.unwrap(), ["sh", "-c", "echo hi"]);
        assert_eq!(c.env["A"], "b");
        assert_eq!(c.memory, Some(64 * 1024 * 1024));
        assert_eq!(
            c.restart,
            RestartPolicy::OnFailure {
                max_retries: Some(3)
            }
        );
        assert!(c.init);
        assert_eq!(c.stop_grace_period, Some(Duration::from_secs(3)));
        let h = c.healthcheck.unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "wget -q localhost"]);
        assert_eq!(
            (h.interval, h.retries),
            (Some(Duration::from_secs(2)), Some(5))
        );
        assert_eq!(
            (c.log_max_size, c.log_max_files),
            (Some(1024 * 1024), Some(3))
        );
    }

    #[test]
    fn networks_give_the_service_name_and_aliases_and_the_first_is_primary() {
        let p = load(
            "services:\n  web:\n    image: nginx\n    networks:\n      front:\n        aliases: [www]\n        \
             ipv4_address: 172.30.0.9\n      back: {}\n  side:\n    image: x\n    network_mode: service:web\n\
             networks:\n  front:\n    ipam:\n      config:\n        - subnet: 172.30.0.0/24\n  back:\n    name: corp\n",
        );
        let ctx = Context {
            project: &p,
            name: "shop",
            dir: Path::new("/"),
        };
        let NetMode::Bridge(joins) = net_mode(&ctx, "web", &p.services["web"]).unwrap() else {
            panic!("bridge expected");
        };
        let front = joins.iter().find(|j| j.network == "shop_front").unwrap();
        assert_eq!(front.aliases, ["web", "www"]);
        assert_eq!(front.ipv4, Some("172.30.0.9".parse().unwrap()));
        assert!(joins.iter().any(|j| j.network == "corp"));
        assert_eq!(joins.iter().filter(|j| j.primary).count(), 1);
        assert_eq!(
            net_mode(&ctx, "side", &p.services["side"]).unwrap(),
            NetMode::Container("shop-web-1".into())
        );
    }

    #[test]
    fn configs_and_secrets_keep_their_source_owner_and_mode() {
        let p = load(
            "services:\n  web:\n    image: nginx\n    configs:\n      - source: site\n        target: /etc/site.conf\n    \
             secrets:\n      - source: pass\n        uid: '33'\n        mode: 0400\n\
             configs:\n  site:\n    content: hello\nsecrets:\n  pass:\n    environment: PASS\n",
        );
        let ctx = Context {
            project: &p,
            name: "shop",
            dir: Path::new("/srv"),
        };
        let reqs = file_requests(&ctx, "web", &p.services["web"]).unwrap();
        assert_eq!(reqs[0].source, FileSource::Content("hello".into()));
        assert_eq!(reqs[0].target.as_deref(), Some("/etc/site.conf"));
        assert_eq!(reqs[1].kind, FileKind::Secret);
        assert_eq!(reqs[1].source, FileSource::Environment("PASS".into()));
        assert_eq!((reqs[1].uid, reqs[1].mode), (Some(33), Some(0o400)));
    }
}
