//! The pure part of the firewall: `FirewallInput` → one nftables batch that
//! replaces the `inet rcompose` table whole.
//!
//! Invariants:
//! - the batch starts with `add table`, `delete table`, `add table`: adding
//!   first makes the delete succeed when the table is absent, and since nft
//!   runs the batch as one transaction, nobody ever sees a half-built table
//!   and stale rules can never accumulate;
//! - every object in the batch belongs to `inet rcompose`;
//! - the same input (in any order) renders the same batch.
//!
//! Semantics follow docker's bridge driver: containers reach out through
//! masquerade, published ports are DNATed from any local address, networks
//! are isolated from each other, internal networks have no way in or out,
//! and nothing is routed into a bridge unless it is a reply or was DNATed.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use nftables::batch::Batch;
use nftables::schema::{Chain, NfListObject, Nftables, Rule, Table};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use super::TABLE;
use super::input::{FirewallInput, FwNetwork, FwPort};
use super::stmt::{self, Stmt};

/// Filter chain on the forward hook: isolation and reachability.
pub const CHAIN_FORWARD: &str = "forward";
/// NAT chain on the prerouting hook: published ports, from outside.
pub const CHAIN_PREROUTING: &str = "prerouting";
/// NAT chain on the output hook: published ports, from the host itself.
pub const CHAIN_OUTPUT: &str = "output";
/// NAT chain on the postrouting hook: masquerade.
pub const CHAIN_POSTROUTING: &str = "postrouting";
/// Filter chain on the prerouting hook, before conntrack: drops packets
/// from a bridge to loopback addresses, which `route_localnet` would
/// otherwise let a container send to the host's 127.0.0.1 services.
pub const CHAIN_GUARD: &str = "guard";
/// Regular chain with one DNAT rule per published host port.
pub const CHAIN_PUBLISHED: &str = "published";

// Named priorities of nft(8); the JSON interface wants plain numbers.
const PRIO_RAW: i32 = -300;
const PRIO_FILTER: i32 = 0;
const PRIO_DSTNAT: i32 = -100;
const PRIO_SRCNAT: i32 = 100;

/// The batch that makes `inet rcompose` exactly what `input` describes.
pub fn render(input: &FirewallInput) -> Nftables<'static> {
    let input = input.normalized();
    let mut batch = Batch::new();
    replace_table(&mut batch);
    for chain in chains() {
        batch.add(NfListObject::Chain(chain));
    }
    let rules = [
        (CHAIN_GUARD, guard_rules(&input)),
        (CHAIN_FORWARD, forward_rules(&input)),
        (CHAIN_PREROUTING, vec![jump_to_published()]),
        (CHAIN_OUTPUT, vec![jump_to_published()]),
        (CHAIN_PUBLISHED, published_rules(&input)),
        (CHAIN_POSTROUTING, postrouting_rules(&input)),
    ];
    for (chain, chain_rules) in rules {
        for expr in chain_rules {
            batch.add(NfListObject::Rule(rule(chain, expr)));
        }
    }
    batch.to_nftables()
}

/// The batch that removes `inet rcompose`, succeeding when it is absent.
pub fn render_removal() -> Nftables<'static> {
    let mut batch = Batch::new();
    batch.add(NfListObject::Table(table()));
    batch.delete(NfListObject::Table(table()));
    batch.to_nftables()
}

fn table() -> Table<'static> {
    Table {
        family: NfFamily::INet,
        name: TABLE.into(),
        handle: None,
    }
}

fn replace_table(batch: &mut Batch<'static>) {
    batch.add(NfListObject::Table(table()));
    batch.delete(NfListObject::Table(table()));
    batch.add(NfListObject::Table(table()));
}

fn chains() -> Vec<Chain<'static>> {
    vec![
        base_chain(
            CHAIN_GUARD,
            NfChainType::Filter,
            NfHook::Prerouting,
            PRIO_RAW,
        ),
        base_chain(
            CHAIN_FORWARD,
            NfChainType::Filter,
            NfHook::Forward,
            PRIO_FILTER,
        ),
        base_chain(
            CHAIN_PREROUTING,
            NfChainType::NAT,
            NfHook::Prerouting,
            PRIO_DSTNAT,
        ),
        base_chain(CHAIN_OUTPUT, NfChainType::NAT, NfHook::Output, PRIO_DSTNAT),
        base_chain(
            CHAIN_POSTROUTING,
            NfChainType::NAT,
            NfHook::Postrouting,
            PRIO_SRCNAT,
        ),
        regular_chain(CHAIN_PUBLISHED),
    ]
}

fn base_chain(name: &'static str, kind: NfChainType, hook: NfHook, prio: i32) -> Chain<'static> {
    Chain {
        _type: Some(kind),
        hook: Some(hook),
        prio: Some(prio),
        policy: Some(NfChainPolicy::Accept),
        ..regular_chain(name)
    }
}

fn regular_chain(name: &'static str) -> Chain<'static> {
    Chain {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: name.into(),
        ..Chain::default()
    }
}

fn rule(chain: &'static str, expr: Vec<Stmt>) -> Rule<'static> {
    Rule {
        family: NfFamily::INet,
        table: TABLE.into(),
        chain: chain.into(),
        expr: expr.into(),
        ..Rule::default()
    }
}

/// Order matters. Internal drops come first of all: otherwise a container
/// of an internal network could leave it through a port published on the
/// host's own address (its connection is DNATed), or keep a connection
/// opened before the network became internal. Replies and DNATed traffic
/// come next, so published ports stay reachable from other networks; then
/// isolation drops, before the accepts for leaving a bridge; last, a drop
/// for anything else routed into a bridge.
fn forward_rules(input: &FirewallInput) -> Vec<Vec<Stmt>> {
    let mut rules = Vec::new();
    for net in input.networks.iter().filter(|n| n.internal) {
        rules.extend(internal_drops(&net.bridge));
    }
    rules.push(vec![stmt::ct_established_or_related(), stmt::accept()]);
    // Published ports are reachable from anywhere, other networks included.
    rules.push(vec![stmt::ct_status_dnat(), stmt::accept()]);
    rules.extend(
        input
            .networks
            .iter()
            .filter_map(|n| isolation_drop(n, &input.networks)),
    );
    for net in &input.networks {
        // With br_netfilter loaded, traffic between two containers of one
        // bridge passes this hook too (iif = oif = the bridge); without this
        // rule an internal network's containers could not reach each other.
        rules.push(vec![
            stmt::iifname(&net.bridge),
            stmt::oifname(&net.bridge),
            stmt::accept(),
        ]);
    }
    for net in input.networks.iter().filter(|n| !n.internal) {
        rules.push(vec![stmt::iifname(&net.bridge), stmt::accept()]);
    }
    for net in &input.networks {
        rules.push(vec![stmt::oifname(&net.bridge), stmt::drop()]);
    }
    rules
}

fn internal_drops(bridge: &str) -> [Vec<Stmt>; 2] {
    [
        vec![
            stmt::iifname(bridge),
            stmt::oifname_ne(bridge),
            stmt::drop(),
        ],
        vec![
            stmt::oifname(bridge),
            stmt::iifname_ne(bridge),
            stmt::drop(),
        ],
    ]
}

/// `iifname A oifname { B, C } drop`: one rule per bridge instead of one per
/// pair; none when there is no other bridge.
fn isolation_drop(net: &FwNetwork, all: &[FwNetwork]) -> Option<Vec<Stmt>> {
    let others: Vec<&str> = all
        .iter()
        .map(|n| n.bridge.as_str())
        .filter(|b| *b != net.bridge)
        .collect();
    if others.is_empty() {
        return None;
    }
    Some(vec![
        stmt::iifname(&net.bridge),
        stmt::oifname_in(&others),
        stmt::drop(),
    ])
}

fn jump_to_published() -> Vec<Stmt> {
    vec![stmt::fib_daddr_local(), stmt::jump(CHAIN_PUBLISHED)]
}

/// One DNAT rule per host port. Ports into internal networks are left out:
/// such a network has no way in, and `ct status dnat accept` in `forward`
/// would otherwise open one.
fn published_rules(input: &FirewallInput) -> Vec<Vec<Stmt>> {
    input
        .ports
        .iter()
        .filter(|p| p.families_match())
        .filter(|p| input.network(&p.bridge).is_none_or(|n| !n.internal))
        .flat_map(|p| {
            p.port_pairs()
                .map(move |(host, container)| dnat_rule(p, host, container))
        })
        .collect()
}

/// A mapping without a host address, or bound to `0.0.0.0` / `::`, matches
/// every local address of the container address's family.
fn dnat_rule(port: &FwPort, host_port: u16, container_port: u16) -> Vec<Stmt> {
    let family_or_address = match port.mapping.host_ip {
        Some(ip) if !ip.is_unspecified() => stmt::daddr_is(ip),
        _ => stmt::nfproto_of(port.container_ip),
    };
    vec![
        family_or_address,
        stmt::dport_is(port.mapping.protocol, host_port),
        stmt::dnat_to(port.container_ip, container_port),
    ]
}

fn guard_rules(input: &FirewallInput) -> Vec<Vec<Stmt>> {
    input
        .networks
        .iter()
        .map(|net| {
            vec![
                stmt::iifname(&net.bridge),
                stmt::daddr_in(LOOPBACK),
                stmt::drop(),
            ]
        })
        .collect()
}

fn postrouting_rules(input: &FirewallInput) -> Vec<Vec<Stmt>> {
    let mut rules = Vec::new();
    for net in input.networks.iter().filter(|n| !n.internal) {
        // Hairpin: a container reaching a port published by its own network
        // must see the reply come back through the host, not directly. The
        // match is on the source subnet, not on the input interface: with
        // br_netfilter the hairpinned packet reaches postrouting as a
        // bridged frame, which has no input interface there.
        for subnet in &net.subnets {
            rules.push(vec![
                stmt::ct_status_dnat(),
                stmt::saddr_in(*subnet),
                stmt::oifname(&net.bridge),
                stmt::masquerade(),
            ]);
        }
        // 127.0.0.1:PORT DNATed into the bridge: a loopback source cannot
        // be answered by a container.
        rules.push(vec![
            stmt::saddr_in(LOOPBACK),
            stmt::oifname(&net.bridge),
            stmt::masquerade(),
        ]);
        for subnet in &net.subnets {
            rules.push(vec![
                stmt::saddr_in(*subnet),
                stmt::oifname_ne(&net.bridge),
                stmt::masquerade(),
            ]);
        }
    }
    rules
}

/// `127.0.0.0/8`, the sources `route_localnet` lets out of a bridge.
const LOOPBACK: IpNet = IpNet::new_assert(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8);
