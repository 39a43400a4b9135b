//! The network manager: what a stack's networks and a container's endpoints
//! need, in one place. Each mutating call takes the state lock, changes the
//! kernel through the `Netlink` and `Firewall` seams, then rewrites the
//! records, the DNS table and the whole nftables table from the records, so
//! the kernel always converges to what the records say.
//!
//! Failure leaves a state the next call converges from: records are written
//! only after the kernel accepted the change, and everything is idempotent.

mod dnsd;
mod endpoints;
mod store;

use std::collections::BTreeMap;
use std::io;

use ipnet::IpNet;

use crate::dns::{DnsEndpoint, DnsNetwork, DnsTable, save_table};
use crate::firewall::{Firewall, FirewallError, FirewallInput, render};
use crate::ipam::{IpamError, IpamRequest, Leases, Occupied, plan_network_subnets};
use crate::model::NetworkRecord;
use crate::netlink::{BridgeSpec, Netlink, NetlinkError};
use crate::{names, netns};
use rcompose_reconciler::fsutil;

#[cfg(any(test, feature = "testing"))]
pub use dnsd::FakeDns;
pub use dnsd::{DnsLauncher, DnsServers, DnsdError, nameserver_of, running_pid as dns_pid};
pub use endpoints::{ConnectRequest, ContainerFiles, FilesRequest};
pub use store::NetPaths;

/// Label marking networks netctl created.
pub const LABEL_MANAGED: &str = "io.rcompose.managed";

/// A network as a stack file describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkRequest {
    /// Full name (`<project>_<key>` or `name:`).
    pub name: String,
    /// `driver_opts."com.docker.network.bridge.name"`.
    pub bridge: Option<String>,
    /// `driver_opts."com.docker.network.driver.mtu"`.
    pub mtu: Option<u32>,
    /// `internal: true`.
    pub internal: bool,
    /// `enable_ipv6: true`.
    pub enable_ipv6: bool,
    /// `ipam.config` entries.
    pub ipam: Vec<IpamRequest>,
    /// `labels`.
    pub labels: BTreeMap<String, String>,
    /// `external: true`: must exist, never created or removed.
    pub external: bool,
}

/// Failures of the network manager.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// Reading or writing netctl's state failed.
    #[error("failed to {what}")]
    State {
        /// What we were doing.
        what: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// An external network does not exist.
    #[error("network {0} declared as external could not be found")]
    ExternalMissing(String),
    /// A network to inspect, connect or remove does not exist.
    #[error("network {0} not found")]
    NotFound(String),
    /// A network still has containers.
    #[error("network {network} has active endpoints: {containers}")]
    InUse {
        /// Network name.
        network: String,
        /// Container names, comma separated.
        containers: String,
    },
    /// The bridge name is not a valid interface name.
    #[error("network {network}: invalid bridge name {bridge:?}")]
    BridgeName {
        /// Network name.
        network: String,
        /// The rejected name.
        bridge: String,
    },
    /// Address management refused.
    #[error("network {network}: address management failed")]
    Ipam {
        /// Network name.
        network: String,
        /// Cause.
        #[source]
        source: IpamError,
    },
    /// The link layer failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// The firewall failed.
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    /// The DNS daemon failed.
    #[error(transparent)]
    Dns(#[from] DnsdError),
    /// A namespace file failed.
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
    /// Writing the DNS table failed.
    #[error(transparent)]
    DnsTable(#[from] crate::dns::TableFileError),
    /// A published port is taken.
    #[error("container {container}: host port {port}/{protocol} is already in use{by}")]
    PortInUse {
        /// The container asking.
        container: String,
        /// Host port.
        port: u16,
        /// tcp or udp.
        protocol: &'static str,
        /// " by <container>" when it is one of ours, or empty.
        by: String,
    },
    /// A MAC address or interface index was unusable.
    #[error("container {container}: {message}")]
    Endpoint {
        /// Container name.
        container: String,
        /// What was wrong.
        message: String,
    },
}

/// Result of the network manager.
pub type Result<T> = std::result::Result<T, NetworkError>;

fn state(what: impl Into<String>) -> impl FnOnce(io::Error) -> NetworkError {
    let what = what.into();
    move |source| NetworkError::State { what, source }
}

/// The network manager over a link layer, a firewall and DNS servers.
pub struct Networks<N, F, D = DnsLauncher> {
    paths: NetPaths,
    netlink: N,
    firewall: F,
    dns: D,
}

impl<N: Netlink + Sync, F: Firewall, D: DnsServers> Networks<N, F, D> {
    /// A manager keeping its state under `paths`.
    pub fn new(paths: NetPaths, netlink: N, firewall: F, dns: D) -> Networks<N, F, D> {
        Networks {
            paths,
            netlink,
            firewall,
            dns,
        }
    }

    /// Where state lives.
    pub fn paths(&self) -> &NetPaths {
        &self.paths
    }

    fn lock(&self) -> Result<fsutil::LockGuard> {
        std::fs::create_dir_all(&self.paths.state)
            .map_err(state("create the network state directory"))?;
        fsutil::lock(&self.paths.lock()).map_err(state("lock the network state"))
    }

    /// Every network, sorted by name.
    pub fn list(&self) -> Result<Vec<NetworkRecord>> {
        self.paths.networks().map_err(state("list networks"))
    }

    /// One network.
    pub fn inspect(&self, name: &str) -> Result<NetworkRecord> {
        self.paths
            .network(name)
            .map_err(state(format!("read network {name}")))?
            .ok_or_else(|| NetworkError::NotFound(name.into()))
    }

    /// Whether the link `name` (a network's bridge) exists on the host; a
    /// record whose bridge is missing describes a network that carries no
    /// traffic until it is removed and created again.
    pub async fn link_exists(&self, name: &str) -> Result<bool> {
        Ok(self.netlink.link_exists(name).await?)
    }

    /// Creates the network unless it exists, and makes sure its bridge,
    /// firewall rules and DNS server are in place either way.
    pub async fn ensure_network(&self, request: &NetworkRequest) -> Result<NetworkRecord> {
        let _lock = self.lock()?;
        let existing = self
            .paths
            .network(&request.name)
            .map_err(state(format!("read network {}", request.name)))?;
        let record = match (existing, request.external) {
            (Some(record), _) => record,
            (None, true) => return Err(NetworkError::ExternalMissing(request.name.clone())),
            (None, false) => {
                // A DNS daemon of a network of that name without a record is
                // left by a removal that crashed: it listens on the old
                // network's addresses, and would be taken for the new one's.
                self.dns.stop(&self.paths, &request.name);
                self.new_record(request).await?
            }
        };
        self.realize(&record).await?;
        Ok(record)
    }

    async fn new_record(&self, request: &NetworkRequest) -> Result<NetworkRecord> {
        let id = names::network_id(&request.name);
        let bridge = request
            .bridge
            .clone()
            .unwrap_or_else(|| names::bridge_name(&id));
        if !names::valid_ifname(&bridge) {
            return Err(NetworkError::BridgeName {
                network: request.name.clone(),
                bridge,
            });
        }
        let networks: Vec<(String, IpNet)> = self
            .list()?
            .into_iter()
            .flat_map(|n| {
                n.subnets
                    .into_iter()
                    .map(move |s| (n.name.clone(), s.subnet))
            })
            .collect();
        let host_routes = self.netlink.host_routes().await?;
        let occupied = Occupied {
            networks: &networks,
            host_routes: &host_routes,
        };
        let ipam_err = |source| NetworkError::Ipam {
            network: request.name.clone(),
            source,
        };
        let subnets =
            plan_network_subnets(&request.ipam, request.enable_ipv6, &request.name, &occupied)
                .map_err(ipam_err)?;
        let mut labels = request.labels.clone();
        labels.insert(LABEL_MANAGED.into(), "true".into());
        let record = NetworkRecord {
            name: request.name.clone(),
            id,
            bridge,
            internal: request.internal,
            mtu: request.mtu,
            subnets,
            labels,
        };
        let dir = self.paths.network_dir(&record.name);
        std::fs::create_dir_all(dir.join("endpoints"))
            .map_err(state(format!("create {}", dir.display())))?;
        Leases::new(record.subnets.clone())
            .save(&self.paths.leases(&record.name))
            .map_err(ipam_err)?;
        fsutil::write_json(&self.paths.network_record(&record.name), &record)
            .map_err(state(format!("write network {}", record.name)))?;
        Ok(record)
    }

    /// Brings the kernel in line with a record: bridge, ruleset, DNS.
    async fn realize(&self, record: &NetworkRecord) -> Result<()> {
        let bridge = BridgeSpec {
            name: record.bridge.clone(),
            mtu: record.mtu,
            addresses: record
                .subnets
                .iter()
                .map(|s| {
                    IpNet::new(s.gateway, s.subnet.prefix_len()).expect("prefix of a valid subnet")
                })
                .collect(),
        };
        self.netlink.ensure_bridge(&bridge).await?;
        self.sync(true)?;
        self.dns.ensure(&self.paths, record)?;
        Ok(())
    }

    /// Removes a network: its DNS server, bridge, rules and state. Refused
    /// while containers are attached; a missing network is success, and so
    /// is a bridge that is already gone (deleted by hand): the rest goes.
    pub async fn remove_network(&self, name: &str) -> Result<()> {
        self.remove_network_detaching(name, &[]).await
    }

    /// [`Self::remove_network`], detaching first the containers of
    /// `detach` that are still attached (stopped ones, which the caller
    /// removes, or keeps stopped); any other container attached refuses it.
    ///
    /// Under the network lock, the network's directory is moved aside
    /// (`.removing-<name>`, see [`NetPaths::removing_dir`]): from then on no
    /// connect finds the network, and the DNS table and the rules are made
    /// without it. The bridge is deleted after the lock is let go, so that
    /// the removals of detached containers, which take the lock for their
    /// own records, go on meanwhile; the detached veths are deleted after
    /// the bridge (those their removals did not delete first). If the
    /// bridge cannot be deleted, the directory is moved back: the network,
    /// with its endpoints, is there for another try.
    pub async fn remove_network_detaching(&self, name: &str, detach: &[String]) -> Result<()> {
        let lock = self.lock()?;
        let Some(record) = self
            .paths
            .network(name)
            .map_err(state(format!("read network {name}")))?
        else {
            return Ok(());
        };
        let (detached, attached): (Vec<_>, Vec<_>) = self
            .paths
            .endpoints_of(name)
            .map_err(state(format!("list endpoints of {name}")))?
            .into_iter()
            .partition(|e| detach.contains(&e.container_id));
        if !attached.is_empty() {
            let containers = attached
                .iter()
                .map(|e| e.container_name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(NetworkError::InUse {
                network: name.into(),
                containers,
            });
        }
        let (dir, aside) = (self.paths.network_dir(name), self.paths.removing_dir(name));
        let moved =
            fsutil::remove_dir_all_if_exists(&aside).and_then(|()| std::fs::rename(&dir, &aside));
        moved.map_err(state(format!("move the state of network {name} aside")))?;
        // The bridge and the network's rules go at the same time: each waits
        // for the kernel (RCU grace periods, some 35 ms each on a small VM),
        // and neither needs the other gone. The bridge is deleted from a
        // thread of its own (netlink opens its connection on that thread's
        // runtime; a new thread is in the host's network namespace, as every
        // thread but the short-lived ones that join a container's), while
        // this one stops the DNS server (its sockets outlive the bridge's
        // addresses), rewrites the rules and the DNS table without the
        // network, and lets the lock go.
        let veths: Vec<&str> = detached.iter().map(|e| e.host_veth.as_str()).collect();
        let (netlink, bridge) = (&self.netlink, &record.bridge);
        let (removed, synced) = std::thread::scope(|scope| {
            let removal = scope.spawn(move || -> Result<()> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(NetlinkError::Socket)?;
                rt.block_on(async {
                    netlink.remove_link(bridge).await?;
                    for veth in veths {
                        // Its container's removal may have deleted it, or
                        // deletes it at the same time: either is fine.
                        let _ = netlink.remove_link(veth).await;
                    }
                    Ok(())
                })
            });
            self.dns.stop(&self.paths, name);
            let synced = self.sync(false);
            drop(lock);
            let removed = removal
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (removed, synced)
        });
        if let Err(e) = removed {
            let _lock = self.lock()?;
            std::fs::rename(&aside, &dir)
                .map_err(state(format!("move the state of network {name} back")))?;
            // Its rules come back; its DNS server with the next ensure.
            self.sync(true)?;
            return Err(e);
        }
        fsutil::remove_dir_all_if_exists(&aside)
            .map_err(state(format!("remove the state of network {name}")))?;
        synced
    }

    /// Rewrites the DNS table and the nftables table from the records; with
    /// no network left, our nftables table is deleted. Unless `force`, an
    /// nftables table equal to the last one applied is left alone.
    fn sync(&self, force: bool) -> Result<()> {
        let networks = self.list()?;
        let endpoints = self
            .paths
            .all_endpoints()
            .map_err(state("list endpoints"))?;
        let table = DnsTable {
            networks: networks
                .iter()
                .map(|n| {
                    (
                        n.name.clone(),
                        DnsNetwork {
                            internal: n.internal,
                        },
                    )
                })
                .collect(),
            endpoints: endpoints
                .iter()
                .map(|e| DnsEndpoint::from_record(e, e.dns_servers.clone()))
                .collect(),
        };
        save_table(&self.paths.dns_table(), &table)?;
        let ruleset = (!networks.is_empty())
            .then(|| render(&FirewallInput::from_records(&networks, &endpoints)));
        // Each nft run costs milliseconds: skip an unchanged ruleset unless
        // told to check (ensuring a network always re-applies, which heals a
        // table someone deleted).
        let digest = ruleset_digest(ruleset.as_ref());
        let stamp = self.paths.firewall_stamp();
        if !force && std::fs::read_to_string(&stamp).is_ok_and(|d| d == digest) {
            return Ok(());
        }
        let _ = std::fs::remove_file(&stamp);
        let bridges: Vec<String> = networks.iter().map(|n| n.bridge.clone()).collect();
        self.firewall.exempt_forward(&bridges)?;
        match &ruleset {
            Some(ruleset) => self.firewall.apply(ruleset)?,
            None => self.firewall.remove()?,
        }
        fsutil::write_atomic_unsynced(&stamp, digest.as_bytes())
            .map_err(state("write the firewall stamp"))
    }
}

#[cfg(test)]
mod tests;

/// SHA-256 of the ruleset's JSON, or of nothing when there is none.
fn ruleset_digest(ruleset: Option<&nftables::schema::Nftables<'static>>) -> String {
    use sha2::{Digest, Sha256};
    let bytes = ruleset
        .map(|r| serde_json::to_vec(r).unwrap_or_default())
        .unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}
