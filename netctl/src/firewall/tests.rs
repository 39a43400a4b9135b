//! Golden and unit tests of the rendered table: what the batch contains,
//! not what the kernel does with it (that is `tests/firewall.rs`).

use std::net::IpAddr;

use nftables::schema::{NfCmd, NfListObject, NfObject, Nftables};

use super::*;
use crate::model::{PortMapping, Protocol};

fn net(bridge: &str, subnets: &[&str], internal: bool) -> FwNetwork {
    FwNetwork {
        bridge: bridge.into(),
        subnets: subnets.iter().map(|s| s.parse().unwrap()).collect(),
        internal,
    }
}

fn port(
    bridge: &str,
    container_ip: &str,
    host_ip: Option<&str>,
    host_port: u16,
    container_port: u16,
) -> FwPort {
    FwPort {
        bridge: bridge.into(),
        container_ip: container_ip.parse().unwrap(),
        mapping: PortMapping {
            host_ip: host_ip.map(|ip| ip.parse::<IpAddr>().unwrap()),
            host_port,
            container_port,
            count: 1,
            protocol: Protocol::Tcp,
        },
    }
}

fn pretty(ruleset: &Nftables<'_>) -> String {
    serde_json::to_string_pretty(ruleset).unwrap()
}

/// Each rule of `chain` as compact JSON of its statements, for `contains` checks.
fn rules_of(ruleset: &Nftables<'_>, chain: &str) -> Vec<String> {
    ruleset
        .objects
        .iter()
        .filter_map(|obj| match obj {
            NfObject::CmdObject(NfCmd::Add(NfListObject::Rule(r))) if r.chain == chain => {
                Some(serde_json::to_string(&r.expr).unwrap())
            }
            _ => None,
        })
        .collect()
}

/// Two networks (one dual-stack) and ports covering every mapping shape.
fn two_networks_with_ports() -> FirewallInput {
    let mut udp = port("rc-front", "172.18.0.4", None, 53, 5353);
    udp.mapping.protocol = Protocol::Udp;
    let mut range = port("rc-back", "172.19.0.3", None, 9000, 9100);
    range.mapping.count = 3;
    FirewallInput::new(
        vec![
            net("rc-front", &["172.18.0.0/16", "fd00:18::/64"], false),
            net("rc-back", &["172.19.0.0/16"], false),
        ],
        vec![
            port("rc-front", "172.18.0.2", None, 8080, 80),
            port("rc-front", "fd00:18::2", None, 8080, 80),
            port("rc-back", "172.19.0.3", Some("127.0.0.1"), 5432, 5432),
            udp,
            range,
        ],
    )
}

#[test]
fn one_network_without_ports_renders_masquerade_and_no_dnat() {
    let input = FirewallInput::new(vec![net("rc-front", &["172.18.0.0/16"], false)], vec![]);
    let ruleset = render(&input);
    insta::assert_snapshot!("one_network_without_ports", to_nft_text(&ruleset));
    // The wire format once, in full, so a change in how the nftables crate
    // serializes shows up here rather than on a host.
    insta::assert_snapshot!("one_network_without_ports_json", pretty(&ruleset));
}

#[test]
fn an_internal_network_renders_drops_and_no_masquerade() {
    let input = FirewallInput::new(vec![net("rc-back", &["172.19.0.0/16"], true)], vec![]);
    let ruleset = render(&input);
    assert!(rules_of(&ruleset, CHAIN_POSTROUTING).is_empty());
    insta::assert_snapshot!("internal_network", to_nft_text(&ruleset));
}

#[test]
fn two_networks_with_published_ports_render_isolation_and_dnat() {
    insta::assert_snapshot!(
        "two_networks_with_ports",
        to_nft_text(&render(&two_networks_with_ports()))
    );
}

#[test]
fn every_batch_replaces_our_table_and_touches_nothing_else() {
    // The strict fake panics on anything else.
    let fw = FakeFirewall::new();
    fw.apply(&render(&two_networks_with_ports())).unwrap();
    fw.apply(&render(&FirewallInput::default())).unwrap();
}

#[test]
fn rendering_does_not_depend_on_input_order() {
    let input = two_networks_with_ports();
    let mut shuffled = input.clone();
    shuffled.networks.reverse();
    shuffled.ports.reverse();
    assert_eq!(render(&input), render(&shuffled));
}

#[test]
fn a_range_of_three_ports_renders_three_dnat_rules() {
    let published = rules_of(&render(&two_networks_with_ports()), CHAIN_PUBLISHED);
    for (host, container) in [(9000, 9100), (9001, 9101), (9002, 9102)] {
        let dport = format!(r#""field":"dport"}}}},"right":{host}"#);
        let dnat = format!(r#""addr":"172.19.0.3","family":"ip","port":{container}"#);
        assert_eq!(
            published
                .iter()
                .filter(|r| r.contains(&dport) && r.contains(&dnat))
                .count(),
            1
        );
    }
}

#[test]
fn a_mapping_bound_to_one_family_never_dnats_to_the_other() {
    let input = FirewallInput::new(
        vec![net("rc-front", &["172.18.0.0/16", "fd00:18::/64"], false)],
        vec![
            port("rc-front", "172.18.0.2", Some("::1"), 80, 80),
            port("rc-front", "fd00:18::2", Some("::1"), 80, 80),
        ],
    );
    let published = rules_of(&render(&input), CHAIN_PUBLISHED);
    assert_eq!(published.len(), 1);
    assert!(published[0].contains(r#""addr":"fd00:18::2","family":"ip6""#));
}

#[test]
fn an_unspecified_host_address_matches_the_family_not_an_address() {
    let input = FirewallInput::new(
        vec![net("rc-front", &["172.18.0.0/16"], false)],
        vec![port("rc-front", "172.18.0.2", Some("0.0.0.0"), 80, 80)],
    );
    let published = rules_of(&render(&input), CHAIN_PUBLISHED);
    assert_eq!(published.len(), 1);
    assert!(published[0].contains(r#"{"meta":{"key":"nfproto"}},"right":"ipv4""#));
    assert!(!published[0].contains("daddr"));
}

#[test]
fn ports_into_an_internal_network_are_not_published() {
    let input = FirewallInput::new(
        vec![net("rc-back", &["172.19.0.0/16"], true)],
        vec![port("rc-back", "172.19.0.2", None, 80, 80)],
    );
    assert!(rules_of(&render(&input), CHAIN_PUBLISHED).is_empty());
}

#[test]
fn a_single_network_gets_no_isolation_rule() {
    let input = FirewallInput::new(vec![net("rc-front", &["172.18.0.0/16"], false)], vec![]);
    let forward = rules_of(&render(&input), CHAIN_FORWARD);
    assert!(!forward.iter().any(|r| r.contains(r#""set""#)));
}

#[test]
fn removal_adds_then_deletes_our_table() {
    let json = serde_json::to_string(&render_removal()).unwrap();
    assert_eq!(
        json,
        r#"{"nftables":[{"add":{"table":{"family":"inet","name":"rcompose"}}},{"delete":{"table":{"family":"inet","name":"rcompose"}}}]}"#
    );
}

#[test]
fn internal_drops_come_before_any_accept_in_forward() {
    let input = FirewallInput::new(
        vec![
            net("rc-back", &["172.19.0.0/16"], true),
            net("rc-front", &["172.18.0.0/16"], false),
        ],
        vec![],
    );
    let forward = rules_of(&render(&input), CHAIN_FORWARD);
    let first_accept = forward
        .iter()
        .position(|r| r.contains(r#""accept""#))
        .unwrap();
    let internal: Vec<usize> = (0..forward.len())
        .filter(|&i| {
            forward[i].contains(r#""right":"rc-back""#) && forward[i].contains(r#""op":"!=""#)
        })
        .collect();
    assert_eq!(internal.len(), 2);
    assert!(internal.iter().all(|&i| i < first_accept), "{forward:#?}");
}

#[test]
fn text_rendering_marks_what_it_does_not_know_instead_of_dropping_it() {
    let mut batch = nftables::batch::Batch::new();
    batch.add_cmd(NfCmd::Flush(nftables::schema::FlushObject::Ruleset(None)));
    let text = to_nft_text(&batch.to_nftables());
    assert!(text.starts_with("<unrendered: "), "{text}");
}
