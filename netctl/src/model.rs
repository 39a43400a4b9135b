//! The values every part of netctl shares: a network as it was created, an
//! endpoint (one container on one network) and a published port.
//!
//! These are what netctl persists, so field names are part of the on-disk
//! format documented in `docs/state-layout.md`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// One subnet of a network with its gateway (the bridge's own address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetRecord {
    /// The subnet, e.g. `172.18.0.0/16`.
    pub subnet: IpNet,
    /// The bridge's address inside the subnet.
    pub gateway: IpAddr,
    /// Where container addresses are taken from (defaults to `subnet`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<IpNet>,
}

/// A network as netctl created it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// Full name, e.g. `shop_front`.
    pub name: String,
    /// 64 hex digits, unique per creation.
    pub id: String,
    /// Linux bridge device name (≤ 15 bytes).
    pub bridge: String,
    /// No route out: no masquerade, no forwarding to other interfaces.
    pub internal: bool,
    /// MTU of the bridge and of every veth on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// IPv4 and (with `enable_ipv6`) IPv6 subnets.
    pub subnets: Vec<SubnetRecord>,
    /// User labels plus ours.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One published port range: host `host_ip:host_port..` to the container's
/// `container_port..` (ranges have equal length).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    /// Host address to listen on; `None` means every address of the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<IpAddr>,
    /// First host port.
    pub host_port: u16,
    /// First container port.
    pub container_port: u16,
    /// Number of consecutive ports (1 for a single port).
    pub count: u16,
    /// tcp or udp.
    pub protocol: Protocol,
}

/// One container attached to one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    /// The container's id (the runtime's).
    pub container_id: String,
    /// The container's name, e.g. `shop-web-1`.
    pub container_name: String,
    /// The network's name.
    pub network: String,
    /// Interface name inside the container (`eth0`, `eth1`, …).
    pub ifname: String,
    /// Host side of the veth pair.
    pub host_veth: String,
    /// MAC address of the container side.
    pub mac: String,
    /// Addresses with their prefix length.
    pub addresses: Vec<IpNet>,
    /// Names this endpoint answers to on this network besides the container
    /// name: the service name, aliases, the hostname.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Ports published through this endpoint.
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    /// Network namespace file the endpoint lives in.
    pub netns: String,
    /// The container's own `dns:` servers; empty means the host's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_servers: Vec<IpAddr>,
}
