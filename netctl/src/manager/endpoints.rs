//! Containers on networks: namespace files, connect and disconnect, the
//! files a container sees (`/etc/hosts`, `/etc/hostname`,
//! `/etc/resolv.conf`) and pruning what a crash left behind.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;

use ipnet::IpNet;

use super::{DnsServers, NetworkError, Networks, Result, dnsd, state};
use crate::dns::{ExtraHost, HostsFile, ResolvConf, render_hostname};
use crate::firewall::Firewall;
use crate::ipam::{IpFamily, MacAddress, free_leases, with_leases};
use crate::model::{EndpointRecord, NetworkRecord, PortMapping, Protocol};
use crate::netlink::{AttachSpec, Netlink};
use crate::{names, netns};
use rcompose_reconciler::fsutil;

/// One container joining one network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectRequest {
    /// The runtime's container id.
    pub container_id: String,
    /// The container's name (`<project>-<service>-<n>`).
    pub container_name: String,
    /// Network name.
    pub network: String,
    /// Service name, `aliases` and hostname: names other containers use.
    pub aliases: Vec<String>,
    /// `ipv4_address`.
    pub ipv4_address: Option<IpAddr>,
    /// `ipv6_address`.
    pub ipv6_address: Option<IpAddr>,
    /// `mac_address`.
    pub mac_address: Option<String>,
    /// Ports published through this network.
    pub ports: Vec<PortMapping>,
    /// The container's own `dns:` servers.
    pub dns_servers: Vec<IpAddr>,
}

/// What a container's name-resolution files need beyond its endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilesRequest {
    /// The runtime's container id.
    pub container_id: String,
    /// `hostname` (defaults to the short container id).
    pub hostname: String,
    /// `domainname`.
    pub domainname: Option<String>,
    /// `extra_hosts`, parsed.
    pub extra_hosts: Vec<ExtraHost>,
    /// `dns_search`.
    pub dns_search: Vec<String>,
    /// `dns_opt`.
    pub dns_options: Vec<String>,
}

/// The three files, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerFiles {
    /// `/etc/hosts`.
    pub hosts: String,
    /// `/etc/hostname`.
    pub hostname: String,
    /// `/etc/resolv.conf`.
    pub resolv_conf: String,
}

impl<N: Netlink + Sync, F: Firewall, D: DnsServers> Networks<N, F, D> {
    /// Creates (or finds) the container's network namespace file, which the
    /// runtime then joins by path.
    pub fn ensure_netns(&self, container_id: &str) -> Result<PathBuf> {
        let path = self.paths.netns(container_id);
        netns::create(&path)?;
        Ok(path)
    }

    /// Attaches a container to a network: addresses, a veth pair named
    /// `eth<N>` inside, the default route when it is the first network,
    /// DNS records and published ports. Connecting again returns the
    /// existing endpoint.
    ///
    /// The records are written under the network lock, but the veth pair is
    /// made and moved without it: that waits for the kernel, and would make
    /// every other container's connect wait too. The endpoint is recorded
    /// before its veth exists, so a prune meanwhile counts the veth as ours,
    /// and a crash in between leaves a record without a veth, which the next
    /// connect makes again.
    pub async fn connect(&self, request: &ConnectRequest) -> Result<EndpointRecord> {
        let (network, record, default_route) = match self.reserve(request).await? {
            Reserved::Existing(record) => return Ok(record),
            Reserved::New(network, record, default_route) => (network, record, default_route),
        };
        let attached = self.attach(&network, &record, default_route).await;
        let _lock = self.lock()?;
        if let Err(e) = attached {
            let _ = self.forget_locked(&request.container_id, &network.name);
            return Err(e);
        }
        self.sync(false)?;
        Ok(record)
    }

    /// Under the network lock: the existing endpoint, or a new one leased
    /// and recorded, with whether it takes the default route.
    async fn reserve(&self, request: &ConnectRequest) -> Result<Reserved> {
        let _lock = self.lock()?;
        let network = self.inspect(&request.network)?;
        let path = self.paths.endpoint(&network.name, &request.container_id);
        if let Some(existing) =
            fsutil::read_json::<EndpointRecord>(&path).map_err(state("read endpoint"))?
        {
            // A record whose veth is gone (a reboot, a crash) is stale: the
            // endpoint is made again rather than reported as done.
            if self
                .netlink
                .link_names()
                .await?
                .contains(&existing.host_veth)
            {
                return Ok(Reserved::Existing(existing));
            }
            self.disconnect_locked(&request.container_id, &network.name)
                .await?;
        }
        let mine = self.endpoints_of_container(&request.container_id)?;
        self.check_ports(request)?;
        let addresses = self.lease(&network, request)?;
        let record = self.endpoint_record(&network, request, &mine, addresses)?;
        // The default route goes through the first network with a way out.
        let routed = match self.first_routed(&mine) {
            Ok(routed) => routed.is_some(),
            Err(e) => {
                self.release(&network.name, &request.container_id);
                return Err(e);
            }
        };
        if let Err(e) = fsutil::write_json(&path, &record) {
            self.release(&network.name, &request.container_id);
            return Err(state("write endpoint")(e));
        }
        Ok(Reserved::New(network, record, !routed))
    }

    async fn attach(
        &self,
        network: &NetworkRecord,
        record: &EndpointRecord,
        default_route: bool,
    ) -> Result<()> {
        let mac = MacAddress::parse(&record.mac).map_err(|e| NetworkError::Endpoint {
            container: record.container_name.clone(),
            message: e.to_string(),
        })?;
        let gateways = if default_route && !network.internal {
            network.subnets.iter().map(|s| s.gateway).collect()
        } else {
            Vec::new()
        };
        let spec = AttachSpec {
            bridge: network.bridge.clone(),
            host_veth: record.host_veth.clone(),
            netns: PathBuf::from(&record.netns),
            ifname: record.ifname.clone(),
            mac: mac.octets(),
            addresses: record.addresses.clone(),
            gateways,
            mtu: network.mtu,
        };
        self.netlink.attach(&spec).await?;
        Ok(())
    }

    fn lease(&self, network: &NetworkRecord, request: &ConnectRequest) -> Result<Vec<IpNet>> {
        let owner = request.container_id.clone();
        let subnets = network.subnets.clone();
        let wanted = [
            (IpFamily::V4, request.ipv4_address),
            (IpFamily::V6, request.ipv6_address),
        ];
        with_leases(&self.paths.leases(&network.name), |leases| {
            // A lease whose owner has no endpoint record here is left over:
            // a removal frees its leases without waiting for the disk, and a
            // crash may bring them back. Under the network lock, every
            // lease made by a finished connect has its record.
            leases.retain_owners(|holder| {
                holder == owner || self.paths.endpoint(&network.name, holder).exists()
            });
            let mut out = Vec::new();
            for (family, requested) in wanted {
                if let Some(subnet) = subnets
                    .iter()
                    .find(|s| IpFamily::of_net(&s.subnet) == family)
                {
                    let addr = leases.allocate(&owner, requested, family)?;
                    out.push(
                        IpNet::new(addr, subnet.subnet.prefix_len())
                            .expect("prefix of a valid subnet"),
                    );
                }
            }
            Ok(out)
        })
        .map_err(|source| NetworkError::Ipam {
            network: network.name.clone(),
            source,
        })
    }

    fn release(&self, network: &str, container_id: &str) {
        let _ = free_leases(&self.paths.leases(network), |leases| {
            Ok(leases.release(container_id))
        });
    }

    fn endpoint_record(
        &self,
        network: &NetworkRecord,
        request: &ConnectRequest,
        mine: &[EndpointRecord],
        addresses: Vec<IpNet>,
    ) -> Result<EndpointRecord> {
        let mac = match (
            &request.mac_address,
            addresses.iter().find_map(|a| v4(a.addr())),
        ) {
            (Some(text), _) => MacAddress::parse(text).map_err(|e| NetworkError::Endpoint {
                container: request.container_name.clone(),
                message: e.to_string(),
            })?,
            (None, Some(addr)) => MacAddress::from_ipv4(addr),
            (None, None) => MacAddress::from_ipv4(std::net::Ipv4Addr::new(0, 0, 0, 2)),
        };
        let used: BTreeSet<&str> = mine.iter().map(|e| e.ifname.as_str()).collect();
        let ifname = (0..)
            .map(|n| format!("eth{n}"))
            .find(|n| !used.contains(n.as_str()))
            .expect("unbounded");
        Ok(EndpointRecord {
            container_id: request.container_id.clone(),
            container_name: request.container_name.clone(),
            network: network.name.clone(),
            ifname,
            host_veth: names::host_veth_name(&request.container_id, &network.name),
            mac: mac.to_string(),
            addresses,
            aliases: request.aliases.clone(),
            ports: request.ports.clone(),
            netns: self
                .paths
                .netns(&request.container_id)
                .display()
                .to_string(),
            dns_servers: request.dns_servers.clone(),
        })
    }

    /// Refuses a host port another endpoint publishes, or that a host
    /// process listens on.
    fn check_ports(&self, request: &ConnectRequest) -> Result<()> {
        // Most containers publish nothing: no need to read every endpoint.
        if request.ports.is_empty() {
            return Ok(());
        }
        let others = self
            .paths
            .all_endpoints()
            .map_err(state("list endpoints"))?;
        for mapping in &request.ports {
            for port in mapping.host_port
                ..=mapping
                    .host_port
                    .saturating_add(mapping.count.saturating_sub(1))
            {
                let clash = |by: String| NetworkError::PortInUse {
                    container: request.container_name.clone(),
                    port,
                    protocol: mapping.protocol.as_str(),
                    by,
                };
                if let Some(holder) = others
                    .iter()
                    .filter(|e| e.container_id != request.container_id)
                    .find(|e| e.ports.iter().any(|p| overlaps(p, mapping, port)))
                {
                    return Err(clash(format!(" by {}", holder.container_name)));
                }
                if !host_port_free(mapping.host_ip, port, mapping.protocol) {
                    return Err(clash(String::new()));
                }
            }
        }
        Ok(())
    }

    /// Detaches a container from a network; a missing endpoint is success.
    pub async fn disconnect(&self, container_id: &str, network: &str) -> Result<()> {
        let _lock = self.lock()?;
        self.disconnect_locked(container_id, network).await?;
        self.sync(false)
    }

    async fn disconnect_locked(&self, container_id: &str, network: &str) -> Result<()> {
        let path = self.paths.endpoint(network, container_id);
        let Some(record) =
            fsutil::read_json::<EndpointRecord>(&path).map_err(state("read endpoint"))?
        else {
            return Ok(());
        };
        // Deleting the host end deletes the pair.
        self.netlink.remove_link(&record.host_veth).await?;
        self.forget_locked(container_id, network)
    }

    /// Releases a container's addresses on a network and removes its
    /// endpoint record (its veth is already gone).
    fn forget_locked(&self, container_id: &str, network: &str) -> Result<()> {
        self.release(network, container_id);
        self.remove_record_locked(container_id, network)
    }

    /// Removes a container's endpoint record on a network.
    fn remove_record_locked(&self, container_id: &str, network: &str) -> Result<()> {
        std::fs::remove_file(self.paths.endpoint(network, container_id))
            .or_else(ignore_missing)
            .map_err(state("remove endpoint"))
    }

    /// Detaches a container from every network and removes its namespace.
    ///
    /// What belongs to the container alone goes before the network lock is
    /// taken: its veths (a delete waits for the kernel, an RCU grace period
    /// of 15–25 ms), its namespace mount, its hosts files and its leases
    /// (under the lease file's lock; an address freed a moment before its
    /// endpoint record goes belongs to no veth any more). Under the network
    /// lock, which every other container's connect or removal waits for,
    /// only its endpoint records go and the shared tables are made again.
    /// A prune that runs in between finds endpoints whose namespace is gone
    /// and forgets them the same way.
    pub async fn remove_container(&self, container_id: &str) -> Result<()> {
        let mut first_error = None;
        for endpoint in self.endpoints_of_container(container_id)? {
            if let Err(e) = self.netlink.remove_link(&endpoint.host_veth).await {
                first_error.get_or_insert(NetworkError::from(e));
            }
        }
        if let Err(e) = netns::remove(&self.paths.netns(container_id)) {
            first_error.get_or_insert(e.into());
        }
        let files = self.paths.container_files(container_id);
        if let Err(e) = fsutil::remove_dir_all_if_exists(&files) {
            first_error.get_or_insert(state(format!("remove {}", files.display()))(e));
        }
        // Its addresses go free under the lease file's own lock: the
        // network lock is not held across that durable write.
        let endpoints = self.endpoints_of_container(container_id)?;
        for endpoint in &endpoints {
            self.release(&endpoint.network, container_id);
        }
        let _lock = self.lock()?;
        for endpoint in &endpoints {
            if let Err(e) = self.remove_record_locked(container_id, &endpoint.network) {
                first_error.get_or_insert(e);
            }
        }
        self.sync(false)?;
        first_error.map_or(Ok(()), Err)
    }

    /// The first network of `endpoints` that is not internal.
    fn first_routed(&self, endpoints: &[EndpointRecord]) -> Result<Option<NetworkRecord>> {
        for endpoint in endpoints {
            let network = self.inspect(&endpoint.network)?;
            if !network.internal {
                return Ok(Some(network));
            }
        }
        Ok(None)
    }

    /// A container's endpoints, in interface order.
    pub fn endpoints_of_container(&self, container_id: &str) -> Result<Vec<EndpointRecord>> {
        let mut out = self
            .paths
            .endpoints_of_container(container_id)
            .map_err(state("list endpoints"))?;
        out.sort_by_key(|e| e.ifname[3..].parse::<u32>().unwrap_or(u32::MAX));
        Ok(out)
    }

    /// Renders `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` for a
    /// container from its endpoints: the nameserver is the DNS server on its
    /// first network's gateway.
    pub fn container_files(&self, request: &FilesRequest) -> Result<ContainerFiles> {
        let endpoints = self.endpoints_of_container(&request.container_id)?;
        let addresses = endpoints
            .iter()
            .flat_map(|e| e.addresses.iter().map(|a| a.addr()))
            .collect();
        let hosts = HostsFile {
            hostname: request.hostname.clone(),
            domainname: request.domainname.clone(),
            addresses,
            extra_hosts: request.extra_hosts.clone(),
        };
        // The DNS server of a network with a way out can also forward.
        let network = match self.first_routed(&endpoints)? {
            Some(routed) => Some(routed),
            None => endpoints
                .first()
                .map(|e| self.inspect(&e.network))
                .transpose()?,
        };
        let nameservers = network.iter().filter_map(dnsd::nameserver_of).collect();
        let mut options = request.dns_options.clone();
        if !options.iter().any(|o| o.starts_with("ndots:")) {
            options.push("ndots:0".into());
        }
        let resolv = ResolvConf {
            nameservers,
            search: request.dns_search.clone(),
            options,
        };
        Ok(ContainerFiles {
            hosts: hosts.render(),
            hostname: render_hostname(&request.hostname),
            resolv_conf: resolv.render(),
        })
    }

    /// Renders the container's files and writes them (atomically) into its
    /// files directory; returns the directory, whose `hosts`, `hostname` and
    /// `resolv.conf` the runtime bind-mounts over the image's.
    pub fn write_container_files(&self, request: &FilesRequest) -> Result<PathBuf> {
        let files = self.container_files(request)?;
        let dir = self.paths.container_files(&request.container_id);
        let top = dir.parent().unwrap_or(&dir);
        rcompose_reconciler::fsutil::create_top_dir(top)
            .and_then(|()| std::fs::create_dir_all(&dir))
            .map_err(state(format!("create {}", dir.display())))?;
        for (name, text) in [
            ("hosts", &files.hosts),
            ("hostname", &files.hostname),
            ("resolv.conf", &files.resolv_conf),
        ] {
            fsutil::write_atomic(&dir.join(name), text.as_bytes())
                .map_err(state(format!("write {name} of {}", request.container_id)))?;
        }
        Ok(dir)
    }

    /// Removes what a crash left behind: endpoints whose namespace is gone,
    /// what a network removal left half-done, links of ours without a
    /// record, and (with `networks`) every network that has no endpoint.
    /// Returns what was removed.
    pub async fn prune(&self, networks: bool) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for endpoint in self
            .paths
            .all_endpoints()
            .map_err(state("list endpoints"))?
        {
            if !netns::is_mounted(std::path::Path::new(&endpoint.netns)) {
                self.disconnect(&endpoint.container_id, &endpoint.network)
                    .await?;
                removed.push(format!(
                    "endpoint {} on {}",
                    endpoint.container_name, endpoint.network
                ));
            }
        }
        if networks {
            for network in self.list()? {
                if self
                    .paths
                    .endpoints_of(&network.name)
                    .map_err(state("list endpoints"))?
                    .is_empty()
                {
                    self.remove_network(&network.name).await?;
                    removed.push(format!("network {}", network.name));
                }
            }
        }
        removed.extend(self.prune_removals()?);
        removed.extend(self.prune_links().await?);
        Ok(removed)
    }

    /// Finishes the network removals a crash cut short: the directory moved
    /// aside goes, and the DNS daemon if no network of that name exists
    /// again (the bridge goes with the links no record names).
    fn prune_removals(&self) -> Result<Vec<String>> {
        let _lock = self.lock()?;
        let mut removed = Vec::new();
        for name in self
            .paths
            .removing()
            .map_err(state("list networks being removed"))?
        {
            let live = self
                .paths
                .network(&name)
                .map_err(state(format!("read network {name}")))?;
            if live.is_none() {
                self.dns.stop(&self.paths, &name);
            }
            let aside = self.paths.removing_dir(&name);
            fsutil::remove_dir_all_if_exists(&aside)
                .map_err(state(format!("remove {}", aside.display())))?;
            removed.push(format!("leftovers of the removal of network {name}"));
        }
        Ok(removed)
    }

    async fn prune_links(&self) -> Result<Vec<String>> {
        let _lock = self.lock()?;
        let mut known: BTreeSet<String> = BTreeSet::new();
        for network in self.list()? {
            known.insert(network.bridge.clone());
        }
        for endpoint in self
            .paths
            .all_endpoints()
            .map_err(state("list endpoints"))?
        {
            known.insert(endpoint.host_veth);
        }
        let mut removed = Vec::new();
        for link in self.netlink.link_names().await? {
            if names::is_ours(&link) && !known.contains(&link) {
                self.netlink.remove_link(&link).await?;
                removed.push(format!("link {link}"));
            }
        }
        Ok(removed)
    }
}

fn v4(addr: IpAddr) -> Option<std::net::Ipv4Addr> {
    match addr {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    }
}

fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

/// True when `mapping` publishes `port` of `other`'s protocol on an address
/// that overlaps `other`'s.
fn overlaps(mapping: &PortMapping, other: &PortMapping, port: u16) -> bool {
    let last = mapping.host_port as u32 + mapping.count.max(1) as u32 - 1;
    mapping.protocol == other.protocol
        && (mapping.host_port as u32..=last).contains(&(port as u32))
        && (mapping.host_ip.is_none()
            || other.host_ip.is_none()
            || mapping.host_ip == other.host_ip)
}

/// True when no host process holds the port (we can bind it ourselves).
fn host_port_free(host_ip: Option<IpAddr>, port: u16, protocol: Protocol) -> bool {
    let ip = host_ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let addr = SocketAddr::new(ip, port);
    match protocol {
        Protocol::Tcp => TcpListener::bind(addr).is_ok(),
        Protocol::Udp => UdpSocket::bind(addr).is_ok(),
    }
}

/// What [`Networks::connect`] found or reserved under the lock.
enum Reserved {
    /// The endpoint exists and its veth too.
    Existing(EndpointRecord),
    /// A new endpoint, recorded; its veth is still to be made.
    New(NetworkRecord, EndpointRecord, bool),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(host_ip: Option<&str>, port: u16, count: u16, protocol: Protocol) -> PortMapping {
        PortMapping {
            host_ip: host_ip.map(|s| s.parse().unwrap()),
            host_port: port,
            container_port: 80,
            count,
            protocol,
        }
    }

    #[test]
    fn ports_clash_only_on_the_same_protocol_port_and_overlapping_address() {
        let all = mapping(None, 8080, 3, Protocol::Tcp);
        assert!(overlaps(
            &all,
            &mapping(Some("127.0.0.1"), 8081, 1, Protocol::Tcp),
            8081
        ));
        assert!(!overlaps(
            &all,
            &mapping(None, 8081, 1, Protocol::Udp),
            8081
        ));
        assert!(!overlaps(
            &all,
            &mapping(None, 8083, 1, Protocol::Tcp),
            8083
        ));
        let local = mapping(Some("127.0.0.1"), 8080, 1, Protocol::Tcp);
        assert!(!overlaps(
            &local,
            &mapping(Some("127.0.0.2"), 8080, 1, Protocol::Tcp),
            8080
        ));
    }
}
