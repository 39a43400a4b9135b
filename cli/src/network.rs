//! `rcompose network …`: bridge networks on this host, the way `docker
//! network` handles them (create, ls, inspect, rm, prune, connect,
//! disconnect), and the network part of `container create`.

use std::net::{IpAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use rcompose_netctl::dns::ExtraHost;
use rcompose_netctl::ipam::IpamRequest;
use rcompose_netctl::manager::{ConnectRequest, FilesRequest, NetworkRequest};
use rcompose_netctl::model::{PortMapping, Protocol};
use rcompose_runtime::config::MountSpec;

use crate::host::{HostArgs, Net};
use crate::key_values;

/// Options of `rcompose network`.
#[derive(Args, Debug)]
pub struct NetworkArgs {
    #[command(subcommand)]
    command: NetworkCommand,
}

#[derive(Subcommand, Debug)]
enum NetworkCommand {
    /// Create a bridge network.
    Create(CreateArgs),
    /// List networks.
    Ls {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a network's record and endpoints as JSON.
    Inspect {
        /// Name.
        name: String,
    },
    /// Remove networks (refused while containers are attached).
    Rm {
        /// Names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove unused networks and whatever a crash left behind.
    Prune,
    /// Attach a container to a network.
    Connect {
        /// Another name for the container on this network (repeatable).
        #[arg(long = "alias")]
        aliases: Vec<String>,
        /// IPv4 address.
        #[arg(long)]
        ip: Option<IpAddr>,
        /// IPv6 address.
        #[arg(long)]
        ip6: Option<IpAddr>,
        /// Network.
        network: String,
        /// Container.
        container: String,
    },
    /// Detach a container from a network.
    Disconnect {
        /// Network.
        network: String,
        /// Container.
        container: String,
    },
}

#[derive(Args, Debug)]
struct CreateArgs {
    /// Subnet in CIDR form.
    #[arg(long)]
    subnet: Option<String>,
    /// Gateway inside the subnet.
    #[arg(long)]
    gateway: Option<String>,
    /// Range container addresses are taken from.
    #[arg(long)]
    ip_range: Option<String>,
    /// No route out of the network.
    #[arg(long)]
    internal: bool,
    /// Give the network an IPv6 subnet too.
    #[arg(long)]
    ipv6: bool,
    /// Driver option `KEY=VALUE`: com.docker.network.bridge.name, com.docker.network.driver.mtu.
    #[arg(short, long = "opt")]
    opts: Vec<String>,
    /// Label `KEY=VALUE` (repeatable).
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Name.
    name: String,
}

/// Runs the command.
pub fn run(host: &HostArgs, args: &NetworkArgs) -> anyhow::Result<ExitCode> {
    let net = host.networks()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match &args.command {
        NetworkCommand::Create(create) => {
            let record = rt.block_on(net.ensure_network(&request(create)?))?;
            println!("{}", record.name);
        }
        NetworkCommand::Ls { json } => list(&net, *json)?,
        NetworkCommand::Inspect { name } => {
            let record = net.inspect(name)?;
            let endpoints = net.paths().endpoints_of(name)?;
            let out = serde_json::json!({ "network": record, "endpoints": endpoints });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        NetworkCommand::Rm { names } => {
            for name in names {
                net.inspect(name)?;
                rt.block_on(net.remove_network(name))?;
                println!("{name}");
            }
        }
        NetworkCommand::Prune => {
            for removed in rt.block_on(net.prune(true))? {
                println!("removed {removed}");
            }
        }
        NetworkCommand::Connect {
            aliases,
            ip,
            ip6,
            network,
            container,
        } => {
            host.runtime()?.inspect(container)?;
            let mut request = connect_request(container, network, aliases);
            request.ipv4_address = *ip;
            request.ipv6_address = *ip6;
            rt.block_on(net.connect(&request))?;
        }
        NetworkCommand::Disconnect { network, container } => {
            net.inspect(network)?;
            rt.block_on(net.disconnect(container, network))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn request(args: &CreateArgs) -> anyhow::Result<NetworkRequest> {
    let mut request = NetworkRequest {
        name: args.name.clone(),
        internal: args.internal,
        enable_ipv6: args.ipv6,
        labels: key_values(&args.labels)?,
        ..NetworkRequest::default()
    };
    if args.subnet.is_some() || args.gateway.is_some() || args.ip_range.is_some() {
        request.ipam.push(IpamRequest {
            subnet: args.subnet.clone(),
            ip_range: args.ip_range.clone(),
            gateway: args.gateway.clone(),
        });
    }
    for (key, value) in key_values(&args.opts)? {
        match key.as_str() {
            "com.docker.network.bridge.name" => request.bridge = Some(value),
            "com.docker.network.driver.mtu" => {
                request.mtu = Some(
                    value
                        .parse()
                        .with_context(|| format!("invalid mtu {value:?}"))?,
                );
            }
            _ => bail!("unsupported driver option {key:?}"),
        }
    }
    Ok(request)
}

fn list(net: &Net, json: bool) -> anyhow::Result<()> {
    let records = net.list()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(());
    }
    println!(
        "{:<24} {:<16} {:<20} {:<9} ENDPOINTS",
        "NAME", "BRIDGE", "SUBNET", "INTERNAL"
    );
    for record in records {
        let subnets: Vec<String> = record
            .subnets
            .iter()
            .map(|s| s.subnet.to_string())
            .collect();
        let endpoints = net.paths().endpoints_of(&record.name)?.len();
        println!(
            "{:<24} {:<16} {:<20} {:<9} {endpoints}",
            record.name,
            record.bridge,
            subnets.join(","),
            record.internal
        );
    }
    Ok(())
}

fn connect_request(container: &str, network: &str, aliases: &[String]) -> ConnectRequest {
    ConnectRequest {
        container_id: container.into(),
        container_name: container.into(),
        network: network.into(),
        aliases: aliases.to_vec(),
        ..ConnectRequest::default()
    }
}

/// The network options of `container create` and `container run`.
#[derive(Args, Debug, Default)]
pub struct ContainerNetArgs {
    /// Network to join (repeatable), or `host`, `none`, `container:<name>`.
    #[arg(long = "network")]
    pub networks: Vec<String>,
    /// Another name for the container on its networks (repeatable).
    #[arg(long = "network-alias")]
    pub aliases: Vec<String>,
    /// Publish `[ip:][host_port:]container_port[/proto]` (repeatable; no
    /// `-p`: that names the project).
    #[arg(long = "publish")]
    pub publish: Vec<String>,
    /// IPv4 address on the first network.
    #[arg(long)]
    pub ip: Option<IpAddr>,
    /// MAC address on the first network.
    #[arg(long)]
    pub mac_address: Option<String>,
    /// Host name inside the container (default: the container name).
    #[arg(long)]
    pub hostname: Option<String>,
    /// DNS server the embedded DNS forwards this container's queries to.
    #[arg(long)]
    pub dns: Vec<IpAddr>,
    /// DNS search domain.
    #[arg(long)]
    pub dns_search: Vec<String>,
    /// resolv.conf option.
    #[arg(long = "dns-option")]
    pub dns_options: Vec<String>,
    /// Extra /etc/hosts line `host:ip` (repeatable).
    #[arg(long = "add-host")]
    pub extra_hosts: Vec<String>,
}

/// What joining networks gives a container: the namespace to join (or the
/// host's) and the files to mount.
#[derive(Debug, Default)]
pub struct ContainerNet {
    /// Namespace file to join; `None` with `host: false` means a new, empty one.
    pub netns: Option<PathBuf>,
    /// Share the host's network namespace.
    pub host: bool,
    /// Bind mounts of /etc/hosts, /etc/hostname and /etc/resolv.conf.
    pub mounts: Vec<MountSpec>,
}

/// Sets up a container's networking before it is created.
pub fn prepare(
    host: &HostArgs,
    name: &str,
    args: &ContainerNetArgs,
) -> anyhow::Result<ContainerNet> {
    let net = host.networks()?;
    match args.networks.first().map(String::as_str) {
        // A namespace of our own with only `lo`, which `network connect`
        // can later attach to networks.
        None | Some("none") => {
            let netns = net.ensure_netns(name)?;
            return Ok(ContainerNet {
                netns: Some(netns),
                ..ContainerNet::default()
            });
        }
        Some("host") => {
            return Ok(ContainerNet {
                host: true,
                ..ContainerNet::default()
            });
        }
        Some(mode) if mode.starts_with("container:") => {
            let other = &mode["container:".len()..];
            let netns = net.paths().netns(other);
            if !rcompose_netctl::netns::is_mounted(&netns) {
                bail!("container {other} has no network namespace of its own to share");
            }
            let files = net.paths().container_files(other);
            return Ok(ContainerNet {
                netns: Some(netns),
                host: false,
                mounts: file_mounts(&files),
            });
        }
        Some(_) => {}
    }
    let result = crate::host::block_on(join(&net, name, args))?;
    if result.is_err() {
        let _ = crate::host::block_on(net.remove_container(name));
    }
    result
}

async fn join(net: &Net, name: &str, args: &ContainerNetArgs) -> anyhow::Result<ContainerNet> {
    let netns = net.ensure_netns(name)?;
    let ports = published_ports(&args.publish)?;
    for (i, network) in args.networks.iter().enumerate() {
        net.inspect(network)?;
        let mut request = connect_request(name, network, &args.aliases);
        request.aliases.extend(args.hostname.clone());
        if i == 0 {
            request.ipv4_address = args.ip;
            request.mac_address = args.mac_address.clone();
            request.ports = ports.clone();
        }
        request.dns_servers = args.dns.clone();
        net.connect(&request).await?;
    }
    // `host-gateway` in --add-host: the host as the first network sees it.
    let first = net.inspect(&args.networks[0])?;
    let host_gateway = rcompose_netctl::manager::nameserver_of(&first);
    let files = net.write_container_files(&FilesRequest {
        container_id: name.into(),
        hostname: args.hostname.clone().unwrap_or_else(|| name.into()),
        domainname: None,
        extra_hosts: args
            .extra_hosts
            .iter()
            .map(|h| ExtraHost::parse(h, host_gateway))
            .collect::<Result<_, _>>()?,
        dns_search: args.dns_search.clone(),
        dns_options: args.dns_options.clone(),
    })?;
    Ok(ContainerNet {
        netns: Some(netns),
        host: false,
        mounts: file_mounts(&files),
    })
}

/// Bind mounts of a container's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`.
pub fn file_mounts(dir: &std::path::Path) -> Vec<MountSpec> {
    ["hosts", "hostname", "resolv.conf"]
        .iter()
        .map(|name| MountSpec {
            target: format!("/etc/{name}"),
            source: dir.join(name).display().to_string(),
            kind: "bind".into(),
            options: vec!["rbind".into(), "rprivate".into()],
        })
        .collect()
}

/// `-p` arguments as port mappings; a missing host port gets a free one.
pub fn published_ports(specs: &[String]) -> anyhow::Result<Vec<PortMapping>> {
    let mut parsed = Vec::new();
    for spec in specs {
        parsed.extend(
            rcompose_spec::model::parse_port(spec)
                .map_err(|e| anyhow::anyhow!("{}: {}", e.spec, e.reason))?,
        );
    }
    port_mappings(&parsed)
}

/// Stack-file `ports:` as port mappings; a missing host port gets a free one.
pub fn port_mappings(
    ports: &[rcompose_spec::model::PortMapping],
) -> anyhow::Result<Vec<PortMapping>> {
    let mut out = Vec::new();
    for port in ports {
        let spec = format!(
            "{}:{}/{}",
            port.published.as_deref().unwrap_or(""),
            port.target,
            port.protocol
        );
        let protocol = match port.protocol.as_str() {
            "tcp" | "" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            other => bail!("{spec}: unsupported protocol {other}"),
        };
        let host_ip: Option<IpAddr> = match port.host_ip.as_deref() {
            None | Some("") => None,
            Some(ip) => Some(
                ip.trim_matches(['[', ']'])
                    .parse()
                    .with_context(|| format!("{spec}: invalid address"))?,
            ),
        };
        let host_port = match port.published.as_deref() {
            Some(range) => pick_in_range(range, host_ip, protocol)
                .with_context(|| format!("{spec}: no free host port"))?,
            None => free_port(host_ip, protocol, 0)
                .with_context(|| format!("{spec}: no free host port"))?,
        };
        out.push(PortMapping {
            host_ip,
            host_port,
            container_port: port.target,
            count: 1,
            protocol,
        });
    }
    Ok(out)
}

/// The first port of `range` (`8080` or `8000-8010`) a host process does not hold.
fn pick_in_range(range: &str, ip: Option<IpAddr>, protocol: Protocol) -> anyhow::Result<u16> {
    let (start, end) = range.split_once('-').unwrap_or((range, range));
    let (start, end): (u16, u16) = (start.parse()?, end.parse()?);
    if start == end {
        return Ok(start);
    }
    (start..=end)
        .find_map(|p| free_port(ip, protocol, p).ok())
        .context("every port of the range is in use")
}

fn free_port(ip: Option<IpAddr>, protocol: Protocol, port: u16) -> std::io::Result<u16> {
    let addr = (ip.unwrap_or(IpAddr::from([0, 0, 0, 0])), port);
    match protocol {
        Protocol::Tcp => TcpListener::bind(addr)?.local_addr().map(|a| a.port()),
        Protocol::Udp => UdpSocket::bind(addr)?.local_addr().map(|a| a.port()),
    }
}

/// Detaches a removed container from its networks (best effort: a failure
/// is reported and left for `network prune`).
pub fn release(host: &HostArgs, name: &str) {
    let result = host.networks().and_then(|net| {
        crate::host::block_on(net.remove_container(name))?.map_err(anyhow::Error::from)
    });
    if let Err(e) = result {
        eprintln!("warning: network cleanup of {name}: {e:#}");
    }
}
