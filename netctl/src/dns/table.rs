//! The DNS table and its lookups: which names each container may resolve,
//! as a pure function of the table and the requester's address.
//!
//! Invariants, as docker's embedded DNS behaves:
//! - a requester is identified only by its source address; an address that
//!   belongs to no endpoint is refused, never forwarded (the server must not
//!   be an open resolver on the bridge);
//! - a requester sees the endpoints of every network its container is on,
//!   and nothing else;
//! - a name we know is answered by us, even when it has no address of the
//!   asked family (NODATA), so that it never leaks upstream;
//! - a name we do not know goes upstream, unless every network of the
//!   requester is internal (then NXDOMAIN: an internal network has no way
//!   out, not even for DNS).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::model::EndpointRecord;

/// Port of the upstream servers a container names in its `dns:` list.
const DNS_PORT: u16 = 53;

/// Everything the embedded DNS server answers from. Written as JSON by the
/// part of netctl that attaches containers, read by the server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsTable {
    /// Networks by full name.
    #[serde(default)]
    pub networks: BTreeMap<String, DnsNetwork>,
    /// One entry per container per network.
    #[serde(default)]
    pub endpoints: Vec<DnsEndpoint>,
}

/// What the DNS server needs to know about a network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsNetwork {
    /// No route out: names we do not know are NXDOMAIN instead of forwarded.
    #[serde(default)]
    pub internal: bool,
}

/// One container on one network, with the names it answers to there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsEndpoint {
    /// The network's full name.
    pub network: String,
    /// The container's name, e.g. `shop-web-1`; always resolvable.
    pub container_name: String,
    /// Further names on this network: service name, aliases, hostname.
    #[serde(default)]
    pub names: Vec<String>,
    /// The container's addresses on this network.
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
    /// The container's own `dns:` upstreams; empty means the host's.
    #[serde(default)]
    pub dns_servers: Vec<IpAddr>,
}

impl DnsEndpoint {
    /// The DNS view of an attached endpoint, given the container's `dns:`
    /// upstreams.
    pub fn from_record(record: &EndpointRecord, dns_servers: Vec<IpAddr>) -> DnsEndpoint {
        DnsEndpoint {
            network: record.network.clone(),
            container_name: record.container_name.clone(),
            names: record.aliases.clone(),
            addresses: record.addresses.iter().map(|net| net.addr()).collect(),
            dns_servers,
        }
    }
}

/// The record type a forward lookup asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
    /// Any type we hold no data for (MX, TXT, …): a known name is NODATA.
    Other,
}

/// Where a query we cannot answer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstreams {
    /// The host's resolvers, as the server was configured.
    Host,
    /// The requester's own `dns:` servers.
    Container(Vec<SocketAddr>),
}

/// The outcome of a lookup. `T` is an address for A/AAAA and a domain name
/// for PTR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<T = IpAddr> {
    /// We own the name; the answer may be empty (NOERROR with no data).
    Found(Vec<T>),
    /// Nobody has the name and there is no way out to ask.
    NxDomain,
    /// Not ours: relay the query.
    Forward(Upstreams),
    /// The requester is not a container we know.
    Refused,
}

impl<T> Lookup<T> {
    /// The same outcome with each found item converted; items `convert`
    /// rejects are dropped.
    pub fn map_found<U>(self, convert: impl FnMut(T) -> Option<U>) -> Lookup<U> {
        match self {
            Lookup::Found(items) => Lookup::Found(items.into_iter().filter_map(convert).collect()),
            Lookup::NxDomain => Lookup::NxDomain,
            Lookup::Forward(upstreams) => Lookup::Forward(upstreams),
            Lookup::Refused => Lookup::Refused,
        }
    }
}

/// The requester as the table sees it: its container and that container's
/// networks.
struct Requester<'t> {
    networks: BTreeSet<&'t str>,
    dns_servers: &'t [IpAddr],
}

impl DnsTable {
    /// Addresses for `qname` as seen by the container at `requester`,
    /// rotated left by `rotate` so that successive answers spread load over
    /// replicas.
    pub fn lookup(
        &self,
        requester: IpAddr,
        qname: &str,
        kind: RecordKind,
        rotate: usize,
    ) -> Lookup {
        let Some(who) = self.requester(requester) else {
            return Lookup::Refused;
        };
        let qname = normalize(qname);
        let mut matched = self
            .visible(&who)
            .filter(|endpoint| answers_to(endpoint, &qname))
            .peekable();
        if matched.peek().is_none() {
            return self.not_ours(&who);
        }
        let mut addresses: Vec<IpAddr> = matched
            .flat_map(|endpoint| endpoint.addresses.iter().copied())
            .filter(|address| is_kind(*address, kind))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !addresses.is_empty() {
            let shift = rotate % addresses.len();
            addresses.rotate_left(shift);
        }
        Lookup::Found(addresses)
    }

    /// Names for `address` (a PTR query) as seen by the container at
    /// `requester`: `<container_name>.<network>.` for each endpoint on a
    /// shared network that holds the address.
    pub fn lookup_ptr(&self, requester: IpAddr, address: IpAddr) -> Lookup<String> {
        let Some(who) = self.requester(requester) else {
            return Lookup::Refused;
        };
        let address = address.to_canonical();
        let names: BTreeSet<String> = self
            .visible(&who)
            .filter(|endpoint| endpoint.addresses.contains(&address))
            .map(|endpoint| format!("{}.{}.", endpoint.container_name, endpoint.network))
            .collect();
        if names.is_empty() {
            return self.not_ours(&who);
        }
        Lookup::Found(names.into_iter().collect())
    }

    /// The container owning `address` and every network it is on, or `None`
    /// when no endpoint has that address.
    fn requester(&self, address: IpAddr) -> Option<Requester<'_>> {
        let address = address.to_canonical();
        let own = self
            .endpoints
            .iter()
            .find(|endpoint| endpoint.addresses.contains(&address))?;
        let mine = || {
            self.endpoints
                .iter()
                .filter(|endpoint| endpoint.container_name == own.container_name)
        };
        let dns_servers = mine()
            .map(|endpoint| endpoint.dns_servers.as_slice())
            .find(|servers| !servers.is_empty())
            .unwrap_or_default();
        Some(Requester {
            networks: mine().map(|endpoint| endpoint.network.as_str()).collect(),
            dns_servers,
        })
    }

    /// Endpoints on any network of the requester.
    fn visible<'t>(&'t self, who: &'t Requester<'t>) -> impl Iterator<Item = &'t DnsEndpoint> {
        self.endpoints
            .iter()
            .filter(|endpoint| who.networks.contains(endpoint.network.as_str()))
    }

    /// The answer for a name none of the requester's networks holds.
    fn not_ours<T>(&self, who: &Requester<'_>) -> Lookup<T> {
        let all_internal = who.networks.iter().all(|name| {
            self.networks
                .get(*name)
                .is_some_and(|network| network.internal)
        });
        if all_internal {
            return Lookup::NxDomain;
        }
        if who.dns_servers.is_empty() {
            return Lookup::Forward(Upstreams::Host);
        }
        let servers = who
            .dns_servers
            .iter()
            .map(|ip| SocketAddr::new(*ip, DNS_PORT))
            .collect();
        Lookup::Forward(Upstreams::Container(servers))
    }
}

/// Lowercase, without the trailing dot of a fully qualified name.
fn normalize(qname: &str) -> String {
    qname
        .strip_suffix('.')
        .unwrap_or(qname)
        .to_ascii_lowercase()
}

/// Whether `qname` (normalized) is one of the endpoint's names, bare or
/// qualified with its network.
fn answers_to(endpoint: &DnsEndpoint, qname: &str) -> bool {
    let network = endpoint.network.to_ascii_lowercase();
    std::iter::once(&endpoint.container_name)
        .chain(&endpoint.names)
        .map(|name| normalize(name))
        .any(|name| {
            qname == name
                || qname
                    .strip_prefix(name.as_str())
                    .and_then(|rest| rest.strip_prefix('.'))
                    .is_some_and(|rest| rest == network)
        })
}

/// Whether `address` belongs in an answer of `kind`.
fn is_kind(address: IpAddr, kind: RecordKind) -> bool {
    match kind {
        RecordKind::A => address.is_ipv4(),
        RecordKind::Aaaa => address.is_ipv6(),
        RecordKind::Other => false,
    }
}

/// Builders shared by the tests of the table and of the server.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// Parses an address.
    pub fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// An endpoint with these names and addresses.
    pub fn endpoint(network: &str, container: &str, names: &[&str], addrs: &[&str]) -> DnsEndpoint {
        DnsEndpoint {
            network: network.to_owned(),
            container_name: container.to_owned(),
            names: names.iter().map(|name| (*name).to_owned()).collect(),
            addresses: addrs.iter().map(|text| ip(text)).collect(),
            dns_servers: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRONT: &str = "shop_front";
    const BACK: &str = "shop_back";
    const VAULT: &str = "shop_vault";

    use super::test_support::{endpoint, ip};

    /// front: proxy, web ×2 (web-1 also has IPv6); back: web-1, db;
    /// vault (internal): secrets, db; plus a loner on its own network.
    fn table() -> DnsTable {
        let mut networks = BTreeMap::new();
        networks.insert(FRONT.to_owned(), DnsNetwork { internal: false });
        networks.insert(BACK.to_owned(), DnsNetwork { internal: false });
        networks.insert(VAULT.to_owned(), DnsNetwork { internal: true });
        networks.insert("other_net".to_owned(), DnsNetwork { internal: false });
        let endpoints = vec![
            endpoint(FRONT, "shop-proxy-1", &["proxy"], &["172.18.0.2"]),
            endpoint(
                FRONT,
                "shop-web-1",
                &["web", "www"],
                &["172.18.0.3", "fd00::3"],
            ),
            endpoint(FRONT, "shop-web-2", &["web", "www"], &["172.18.0.4"]),
            endpoint(BACK, "shop-web-1", &["web"], &["172.19.0.3"]),
            endpoint(BACK, "shop-db-1", &["db", "database"], &["172.19.0.2"]),
            endpoint(VAULT, "shop-secrets-1", &["secrets"], &["172.20.0.2"]),
            endpoint(VAULT, "shop-db-1", &["db"], &["172.20.0.3"]),
            endpoint("other_net", "other-app-1", &["app"], &["172.21.0.2"]),
        ];
        DnsTable {
            networks,
            endpoints,
        }
    }

    const PROXY: &str = "172.18.0.2";
    const WEB1: &str = "172.18.0.3";
    const SECRETS: &str = "172.20.0.2";
    const LONER: &str = "172.21.0.2";

    fn a(requester: &str, qname: &str) -> Lookup {
        table().lookup(ip(requester), qname, RecordKind::A, 0)
    }

    fn found(addrs: &[&str]) -> Lookup {
        Lookup::Found(addrs.iter().map(|text| ip(text)).collect())
    }

    #[test]
    fn a_container_resolves_a_service_only_on_networks_it_shares() {
        assert_eq!(a(PROXY, "db"), Lookup::Forward(Upstreams::Host));
        assert_eq!(a(WEB1, "db"), found(&["172.19.0.2"]));
    }

    #[test]
    fn a_container_on_another_network_cannot_resolve_web() {
        assert_eq!(a(LONER, "web"), Lookup::Forward(Upstreams::Host));
        assert_eq!(a(LONER, "shop-web-1"), Lookup::Forward(Upstreams::Host));
    }

    #[test]
    fn replicas_return_every_address_in_rotating_order() {
        let table = table();
        let lookup = |rotate| table.lookup(ip(PROXY), "web", RecordKind::A, rotate);
        assert_eq!(lookup(0), found(&["172.18.0.3", "172.18.0.4"]));
        assert_eq!(lookup(1), found(&["172.18.0.4", "172.18.0.3"]));
        assert_eq!(lookup(2), found(&["172.18.0.3", "172.18.0.4"]));
    }

    #[test]
    fn a_container_on_two_networks_sees_replicas_from_both() {
        // web-1 is on front and back; db asks from back only.
        let db = "172.19.0.2";
        assert_eq!(a(db, "web"), found(&["172.19.0.3"]));
        assert_eq!(
            a(WEB1, "web"),
            found(&["172.18.0.3", "172.18.0.4", "172.19.0.3"])
        );
    }

    #[test]
    fn an_address_listed_twice_is_answered_once() {
        let mut table = table();
        table.endpoints.push(table.endpoints[2].clone());
        let lookup = table.lookup(ip(PROXY), "web", RecordKind::A, 0);
        assert_eq!(lookup, found(&["172.18.0.3", "172.18.0.4"]));
    }

    #[test]
    fn names_match_case_insensitively_with_or_without_trailing_dot() {
        assert_eq!(a(PROXY, "WWW."), found(&["172.18.0.3", "172.18.0.4"]));
        assert_eq!(a(PROXY, "Shop-Proxy-1"), found(&[PROXY]));
    }

    #[test]
    fn aliases_container_names_and_name_dot_network_forms_all_match() {
        assert_eq!(a(WEB1, "database"), found(&["172.19.0.2"]));
        assert_eq!(a(WEB1, "shop-db-1"), found(&["172.19.0.2"]));
        assert_eq!(a(WEB1, "db.shop_back."), found(&["172.19.0.2"]));
        assert_eq!(a(WEB1, "shop-db-1.shop_back"), found(&["172.19.0.2"]));
        assert_eq!(a(WEB1, "web.shop_back"), found(&["172.19.0.3"]));
    }

    #[test]
    fn a_name_qualified_with_a_network_it_is_not_on_is_not_ours() {
        assert_eq!(a(WEB1, "db.shop_front"), Lookup::Forward(Upstreams::Host));
        assert_eq!(a(WEB1, "db.shop_vault"), Lookup::Forward(Upstreams::Host));
    }

    #[test]
    fn a_known_name_without_an_address_of_the_family_is_nodata() {
        let table = table();
        let aaaa = |qname| table.lookup(ip(PROXY), qname, RecordKind::Aaaa, 0);
        assert_eq!(aaaa("proxy"), Lookup::Found(Vec::new()));
        assert_eq!(aaaa("web"), found(&["fd00::3"]));
        let mx = table.lookup(ip(PROXY), "web", RecordKind::Other, 0);
        assert_eq!(mx, Lookup::Found(Vec::new()));
    }

    #[test]
    fn an_unknown_name_on_internal_networks_only_is_nxdomain() {
        assert_eq!(a(SECRETS, "example.test"), Lookup::NxDomain);
        assert_eq!(a(SECRETS, "web"), Lookup::NxDomain);
        assert_eq!(a(SECRETS, "db"), found(&["172.20.0.3"]));
    }

    #[test]
    fn an_unknown_name_is_forwarded_when_one_network_has_a_way_out() {
        // db is on back (external) and vault (internal).
        assert_eq!(
            a("172.20.0.3", "example.test"),
            Lookup::Forward(Upstreams::Host)
        );
        assert_eq!(a("172.20.0.3", "secrets"), found(&[SECRETS]));
    }

    #[test]
    fn an_unknown_requester_is_refused() {
        assert_eq!(a("10.9.9.9", "web"), Lookup::Refused);
        let ptr = table().lookup_ptr(ip("10.9.9.9"), ip(WEB1));
        assert_eq!(ptr, Lookup::Refused);
    }

    #[test]
    fn a_container_with_its_own_dns_servers_forwards_to_them_on_port_53() {
        let mut table = table();
        table.endpoints[0].dns_servers = vec![ip("192.0.2.53")];
        let lookup = table.lookup(ip(PROXY), "example.test", RecordKind::A, 0);
        let expected = Upstreams::Container(vec!["192.0.2.53:53".parse().unwrap()]);
        assert_eq!(lookup, Lookup::Forward(expected));
    }

    #[test]
    fn an_ipv4_mapped_requester_is_the_same_container() {
        assert_eq!(a("::ffff:172.18.0.2", "proxy"), found(&[PROXY]));
    }

    #[test]
    fn ptr_of_a_shared_endpoint_names_container_and_network() {
        let table = table();
        let ptr = table.lookup_ptr(ip(PROXY), ip("172.18.0.4"));
        assert_eq!(
            ptr,
            Lookup::Found(vec!["shop-web-2.shop_front.".to_owned()])
        );
    }

    #[test]
    fn ptr_of_an_address_on_a_network_the_requester_is_not_on_is_not_ours() {
        let table = table();
        let ptr = table.lookup_ptr(ip(PROXY), ip("172.19.0.2"));
        assert_eq!(ptr, Lookup::Forward(Upstreams::Host));
        let ptr = table.lookup_ptr(ip(SECRETS), ip("172.19.0.2"));
        assert_eq!(ptr, Lookup::NxDomain);
    }

    #[test]
    fn the_table_round_trips_through_json_and_defaults_missing_fields() {
        let table = table();
        let json = serde_json::to_string(&table).unwrap();
        assert_eq!(serde_json::from_str::<DnsTable>(&json).unwrap(), table);
        let sparse = r#"{"endpoints":[{"network":"n","container_name":"c"}]}"#;
        let parsed: DnsTable = serde_json::from_str(sparse).unwrap();
        assert!(parsed.networks.is_empty());
        assert!(parsed.endpoints[0].names.is_empty());
    }
}
