//! What the ruleset is rendered from: our networks (bridge, subnets,
//! internal or not) and the ports published into them.
//!
//! Invariant: a normalized input has its networks sorted by bridge, each
//! network's subnets sorted, and its ports sorted without duplicates, so the
//! same desired state renders the same batch whatever order the records were
//! read in. `render` normalizes a copy itself, so callers cannot get this
//! wrong.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::{EndpointRecord, NetworkRecord, PortMapping};

/// Everything the `inet rcompose` table depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirewallInput {
    /// Every network of ours, internal or not.
    pub networks: Vec<FwNetwork>,
    /// Every published port, one entry per container address.
    pub ports: Vec<FwPort>,
}

/// One bridge network as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FwNetwork {
    /// Linux bridge device name.
    pub bridge: String,
    /// IPv4 and IPv6 subnets behind the bridge.
    pub subnets: Vec<IpNet>,
    /// No traffic in or out of the bridge except to the host itself.
    pub internal: bool,
}

/// One published port range towards one container address.
///
/// A container with an IPv4 and an IPv6 address on a network is two
/// `FwPort`s; rendering keeps only the pairs whose families fit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FwPort {
    /// Bridge of the network the container address belongs to.
    pub bridge: String,
    /// The container's address on that network.
    pub container_ip: IpAddr,
    /// Host side, container side, range length and protocol.
    pub mapping: PortMapping,
}

impl FirewallInput {
    /// A normalized input from its parts.
    pub fn new(networks: Vec<FwNetwork>, ports: Vec<FwPort>) -> FirewallInput {
        FirewallInput { networks, ports }.normalized()
    }

    /// The network part of the input, without published ports.
    pub fn from_networks(records: &[NetworkRecord]) -> FirewallInput {
        FirewallInput::from_records(records, &[])
    }

    /// Networks plus the ports their endpoints publish. An endpoint whose
    /// network is not among `networks` is left out: without its bridge
    /// there is nothing to isolate or masquerade it against.
    pub fn from_records(networks: &[NetworkRecord], endpoints: &[EndpointRecord]) -> FirewallInput {
        let ports = endpoints
            .iter()
            .filter_map(|ep| {
                let net = networks.iter().find(|n| n.name == ep.network)?;
                Some(FwPort::for_endpoint(&net.bridge, ep))
            })
            .flatten()
            .collect();
        FirewallInput::new(networks.iter().map(FwNetwork::from_record).collect(), ports)
    }

    /// A copy with networks, subnets and ports in canonical order.
    pub fn normalized(&self) -> FirewallInput {
        let mut networks = self.networks.clone();
        for net in &mut networks {
            // Host bits would make nft reject or silently widen a prefix.
            net.subnets = net.subnets.iter().map(IpNet::trunc).collect();
            net.subnets.sort();
            net.subnets.dedup();
        }
        networks.sort();
        let mut ports = self.ports.clone();
        ports.sort();
        ports.dedup();
        FirewallInput { networks, ports }
    }

    /// The network whose bridge is `bridge`.
    pub fn network(&self, bridge: &str) -> Option<&FwNetwork> {
        self.networks.iter().find(|n| n.bridge == bridge)
    }
}

impl FwNetwork {
    /// The firewall's view of a created network.
    pub fn from_record(record: &NetworkRecord) -> FwNetwork {
        FwNetwork {
            bridge: record.bridge.clone(),
            subnets: record.subnets.iter().map(|s| s.subnet).collect(),
            internal: record.internal,
        }
    }
}

impl FwPort {
    /// One entry per (address, mapping) pair of an endpoint on `bridge`.
    pub fn for_endpoint(bridge: &str, endpoint: &EndpointRecord) -> Vec<FwPort> {
        let mut out = Vec::new();
        for addr in &endpoint.addresses {
            for mapping in &endpoint.ports {
                out.push(FwPort {
                    bridge: bridge.to_owned(),
                    container_ip: addr.addr(),
                    mapping: mapping.clone(),
                });
            }
        }
        out
    }

    /// `(host port, container port)` for every port of the range, stopping
    /// at 65535 instead of wrapping around.
    pub fn port_pairs(&self) -> impl Iterator<Item = (u16, u16)> + '_ {
        let m = &self.mapping;
        (0..m.count).map_while(|i| {
            Some((
                m.host_port.checked_add(i)?,
                m.container_port.checked_add(i)?,
            ))
        })
    }

    /// Whether this mapping reaches `container_ip` at all: a mapping bound
    /// to an IPv4 host address only DNATs to IPv4 container addresses, and
    /// IPv6 likewise; an unbound mapping reaches either family.
    pub fn families_match(&self) -> bool {
        match self.mapping.host_ip {
            Some(host) => host.is_ipv4() == self.container_ip.is_ipv4(),
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{Protocol, SubnetRecord};

    fn record(name: &str, bridge: &str, subnet: &str) -> NetworkRecord {
        let subnet: IpNet = subnet.parse().unwrap();
        NetworkRecord {
            name: name.into(),
            id: "0".repeat(64),
            bridge: bridge.into(),
            internal: false,
            mtu: None,
            subnets: vec![SubnetRecord {
                subnet,
                gateway: subnet.addr(),
                ip_range: None,
            }],
            labels: BTreeMap::new(),
        }
    }

    /// Built from JSON so that fields other modules add with a default do
    /// not break these tests.
    fn endpoint(network: &str, addrs: &[&str], ports: Vec<PortMapping>) -> EndpointRecord {
        serde_json::from_value(serde_json::json!({
            "container_id": "c",
            "container_name": "shop-web-1",
            "network": network,
            "ifname": "eth0",
            "host_veth": "veth0",
            "mac": "02:00:00:00:00:01",
            "addresses": addrs,
            "ports": ports,
            "netns": "/run/netns/x",
        }))
        .unwrap()
    }

    fn tcp(host_port: u16, container_port: u16, count: u16) -> PortMapping {
        PortMapping {
            host_ip: None,
            host_port,
            container_port,
            count,
            protocol: Protocol::Tcp,
        }
    }

    #[test]
    fn from_records_sorts_networks_by_bridge_and_keeps_their_subnets() {
        let input = FirewallInput::from_networks(&[
            record("shop_back", "rc-b", "172.19.0.0/16"),
            record("shop_front", "rc-a", "172.18.0.1/16"),
        ]);
        let bridges: Vec<_> = input.networks.iter().map(|n| n.bridge.as_str()).collect();
        assert_eq!(bridges, ["rc-a", "rc-b"]);
        assert_eq!(
            input.networks[0].subnets,
            ["172.18.0.0/16".parse::<IpNet>().unwrap()]
        );
    }

    #[test]
    fn from_records_gives_one_port_per_container_address() {
        let nets = [record("shop_front", "rc-a", "172.18.0.0/16")];
        let eps = [endpoint(
            "shop_front",
            &["172.18.0.2/16", "fd00::2/64"],
            vec![tcp(80, 8080, 1)],
        )];
        let input = FirewallInput::from_records(&nets, &eps);
        let ips: Vec<String> = input
            .ports
            .iter()
            .map(|p| p.container_ip.to_string())
            .collect();
        assert_eq!(ips, ["172.18.0.2", "fd00::2"]);
        assert!(input.ports.iter().all(|p| p.bridge == "rc-a"));
    }

    #[test]
    fn from_records_leaves_out_endpoints_of_unknown_networks() {
        let nets = [record("shop_front", "rc-a", "172.18.0.0/16")];
        let eps = [endpoint(
            "other_net",
            &["10.0.0.2/24"],
            vec![tcp(80, 80, 1)],
        )];
        assert!(FirewallInput::from_records(&nets, &eps).ports.is_empty());
    }

    #[test]
    fn port_pairs_expand_a_range_and_stop_at_the_last_port() {
        let port = |m| FwPort {
            bridge: "b".into(),
            container_ip: "10.0.0.2".parse().unwrap(),
            mapping: m,
        };
        let pairs: Vec<_> = port(tcp(8000, 80, 3)).port_pairs().collect();
        assert_eq!(pairs, [(8000, 80), (8001, 81), (8002, 82)]);
        assert_eq!(port(tcp(65535, 65534, 3)).port_pairs().count(), 1);
        assert_eq!(port(tcp(80, 80, 0)).port_pairs().count(), 0);
    }

    #[test]
    fn normalizing_removes_duplicate_ports() {
        let p = FwPort {
            bridge: "b".into(),
            container_ip: "10.0.0.2".parse().unwrap(),
            mapping: tcp(80, 80, 1),
        };
        assert_eq!(
            FirewallInput::new(vec![], vec![p.clone(), p]).ports.len(),
            1
        );
    }
}
