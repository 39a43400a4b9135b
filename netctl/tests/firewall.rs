//! Root tests of the firewall against the real kernel and the real `nft`.
//!
//! Each test runs in a fresh network namespace (`ThreadNetns`), and `nft`,
//! spawned from the test thread, inherits it: the host's ruleset is never
//! touched. What the kernel holds is checked with a separate
//! `nft -j list …` so the check does not share code with what it checks.

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use nftables::batch::Batch;
use nftables::schema::{NfListObject, Rule};
use nftables::stmt::{JumpTarget, Statement};
use nftables::types::NfFamily;
use rcompose_netctl::firewall::{
    CHAIN_FORWARD, CHAIN_GUARD, CHAIN_OUTPUT, CHAIN_POSTROUTING, CHAIN_PREROUTING, CHAIN_PUBLISHED,
    Firewall, FirewallInput, FwNetwork, FwPort, NftFirewall, TABLE, render, to_nft_text,
};
use rcompose_netctl::model::{PortMapping, Protocol};
use rcompose_netctl::testing::{ThreadNetns, is_root};
use serde_json::Value;

fn input_with_port(host_port: u16, container_port: u16) -> FirewallInput {
    let front = FwNetwork {
        bridge: "rc-front".into(),
        subnets: vec![
            "172.18.0.0/16".parse().unwrap(),
            "fd00:18::/64".parse().unwrap(),
        ],
        internal: false,
    };
    let back = FwNetwork {
        bridge: "rc-back".into(),
        subnets: vec!["172.19.0.0/16".parse().unwrap()],
        internal: true,
    };
    let web = FwPort {
        bridge: "rc-front".into(),
        container_ip: "172.18.0.2".parse::<IpAddr>().unwrap(),
        mapping: PortMapping {
            host_ip: None,
            host_port,
            container_port,
            count: 1,
            protocol: Protocol::Tcp,
        },
    };
    FirewallInput::new(vec![front, back], vec![web])
}

/// `input_with_port` plus every other shape of port: IPv6, bound to a
/// host address, udp, a range.
fn rich_input() -> FirewallInput {
    let base = input_with_port(8080, 80);
    let mut ports = base.ports.clone();
    let web = ports[0].clone();
    let mut v6 = web.clone();
    v6.container_ip = "fd00:18::2".parse().unwrap();
    let mut local = web.clone();
    local.mapping.host_ip = Some("127.0.0.1".parse().unwrap());
    local.mapping.host_port = 5432;
    let mut udp = web.clone();
    udp.mapping.protocol = Protocol::Udp;
    udp.mapping.host_port = 53;
    let mut range = web;
    range.mapping.host_port = 9000;
    range.mapping.count = 3;
    ports.extend([v6, local, udp, range]);
    FirewallInput::new(base.networks, ports)
}

/// `nft ARGS` with `stdin`, returning stdout; panics with nft's stderr.
fn nft(args: &[&str], stdin: &str) -> String {
    let mut child = Command::new("nft")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nft");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .expect("write to nft");
    let out = child.wait_with_output().expect("wait for nft");
    assert!(
        out.status.success(),
        "nft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("nft printed UTF-8")
}

/// `nft -j ARGS`, parsed; panics with nft's stderr when it fails.
fn nft_json(args: &[&str]) -> Value {
    let out = Command::new("nft")
        .arg("-j")
        .args(args)
        .output()
        .expect("run nft");
    assert!(
        out.status.success(),
        "nft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("nft printed JSON")
}

/// Objects of one kind ("chain", "rule", "table") in a listing.
fn objects<'a>(listing: &'a Value, kind: &str) -> Vec<&'a Value> {
    listing["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.get(kind))
        .collect()
}

fn chain_names(listing: &Value) -> Vec<String> {
    let mut names: Vec<String> = objects(listing, "chain")
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// Whether `chain` has a rule matching `dport` and DNATing to `to_port`.
fn has_dnat(listing: &Value, dport: u64, to_port: u64) -> bool {
    objects(listing, "rule")
        .iter()
        .filter(|r| r["chain"] == CHAIN_PUBLISHED)
        .any(|r| {
            let expr = r["expr"].as_array().unwrap();
            let port_match = expr.iter().any(|s| {
                s["match"]["left"]["payload"]["field"] == "dport"
                    && s["match"]["right"].as_u64() == Some(dport)
            });
            let dnat = expr
                .iter()
                .any(|s| s["dnat"]["port"].as_u64() == Some(to_port));
            port_match && dnat
        })
}

fn our_table_exists() -> bool {
    objects(&nft_json(&["list", "tables"]), "table")
        .iter()
        .any(|t| t["name"] == TABLE)
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn apply_installs_every_chain_and_the_dnat_rule_of_a_published_port() {
    assert!(is_root());
    let _ns = ThreadNetns::enter_new().expect("enter a new network namespace");
    NftFirewall::new()
        .apply(&render(&input_with_port(8080, 80)))
        .expect("apply");

    let listing = nft_json(&["list", "table", "inet", TABLE]);
    let mut expected = vec![
        CHAIN_FORWARD,
        CHAIN_GUARD,
        CHAIN_OUTPUT,
        CHAIN_POSTROUTING,
        CHAIN_PREROUTING,
        CHAIN_PUBLISHED,
    ];
    expected.sort();
    assert_eq!(chain_names(&listing), expected);
    assert!(
        has_dnat(&listing, 8080, 80),
        "no DNAT 8080 → 80 in {listing:#}"
    );
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn applying_a_second_ruleset_replaces_the_first_instead_of_adding_to_it() {
    assert!(is_root());
    let _ns = ThreadNetns::enter_new().expect("enter a new network namespace");
    let fw = NftFirewall::new();
    fw.apply(&render(&input_with_port(8080, 80)))
        .expect("first apply");
    let rules_before = objects(&nft_json(&["list", "table", "inet", TABLE]), "rule").len();
    fw.apply(&render(&input_with_port(9090, 90)))
        .expect("second apply");

    let listing = nft_json(&["list", "table", "inet", TABLE]);
    assert!(has_dnat(&listing, 9090, 90));
    assert!(
        !has_dnat(&listing, 8080, 80),
        "the first ruleset's DNAT is still there"
    );
    assert_eq!(objects(&listing, "rule").len(), rules_before);
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_rejected_batch_leaves_the_previous_table_untouched() {
    assert!(is_root());
    let _ns = ThreadNetns::enter_new().expect("enter a new network namespace");
    let fw = NftFirewall::new();
    fw.apply(&render(&input_with_port(8080, 80)))
        .expect("first apply");

    // A valid replacement with one rule nft must refuse: the jump target
    // does not exist, so the whole transaction is rolled back.
    let mut batch = Batch::new();
    batch.add_all(render(&input_with_port(9090, 90)).objects.iter().cloned());
    let target = JumpTarget {
        target: "no-such-chain".into(),
    };
    let bad = Rule {
        family: NfFamily::INet,
        table: TABLE.into(),
        chain: CHAIN_FORWARD.into(),
        expr: vec![Statement::Jump(target)].into(),
        ..Rule::default()
    };
    batch.add(NfListObject::Rule(bad));
    assert!(fw.apply(&batch.to_nftables()).is_err());

    let listing = nft_json(&["list", "table", "inet", TABLE]);
    assert!(has_dnat(&listing, 8080, 80));
    assert!(!has_dnat(&listing, 9090, 90));
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn list_ours_sees_only_our_table_and_none_when_it_is_absent() {
    assert!(is_root());
    let _ns = ThreadNetns::enter_new().expect("enter a new network namespace");
    let fw = NftFirewall::new();
    assert_eq!(fw.list_ours().expect("list while absent"), None);

    fw.apply(&render(&input_with_port(8080, 80)))
        .expect("apply");
    let listed = fw.list_ours().expect("list").expect("our table is there");
    let listed = serde_json::to_value(&listed).unwrap();
    assert_eq!(chain_names(&listed).len(), 6);
    assert!(has_dnat(&listed, 8080, 80));
    assert!(objects(&listed, "table").iter().all(|t| t["name"] == TABLE));
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn remove_twice_succeeds_and_leaves_no_rcompose_table() {
    assert!(is_root());
    let _ns = ThreadNetns::enter_new().expect("enter a new network namespace");
    let fw = NftFirewall::new();
    fw.apply(&render(&input_with_port(8080, 80)))
        .expect("apply");
    assert!(our_table_exists());

    fw.remove().expect("first remove");
    fw.remove().expect("second remove, table already gone");
    assert!(!our_table_exists());
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn the_text_rendering_builds_the_same_table_as_the_json_batch() {
    assert!(is_root());
    let ruleset = render(&rich_input());
    let from_json = {
        let _ns = ThreadNetns::enter_new().expect("enter a new network namespace");
        NftFirewall::new().apply(&ruleset).expect("apply JSON");
        nft(&["list", "table", "inet", TABLE], "")
    };
    let from_text = {
        let _ns = ThreadNetns::enter_new().expect("enter a new network namespace");
        nft(&["-f", "-"], &to_nft_text(&ruleset));
        nft(&["list", "table", "inet", TABLE], "")
    };
    assert_eq!(from_json, from_text);
    assert!(
        from_json.contains("dnat ip6 to [fd00:18::2]:80"),
        "{from_json}"
    );
}
