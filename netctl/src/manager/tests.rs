//! The network manager on the fakes: what it asks of the kernel, what it
//! persists, and how it recovers from a failure, without root.

use std::net::IpAddr;

use super::*;
use crate::dns::{Lookup, RecordKind, load_table};
use crate::firewall::{FakeFirewall, to_nft_text};
use crate::manager::{ConnectRequest, FakeDns, FilesRequest};
use crate::model::{PortMapping, Protocol};
use crate::netlink::{Call, FakeNetlink};

type Fake = Networks<FakeNetlink, FakeFirewall, FakeDns>;

fn manager(dir: &tempfile::TempDir, routes: &[&str]) -> Fake {
    let routes = routes.iter().map(|r| r.parse().unwrap()).collect();
    Networks::new(
        NetPaths::new(&dir.path().join("state"), &dir.path().join("run")),
        FakeNetlink::with_routes(routes),
        FakeFirewall::new(),
        FakeDns::default(),
    )
}

fn block_on<T>(f: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn network(name: &str) -> NetworkRequest {
    NetworkRequest {
        name: name.into(),
        ..NetworkRequest::default()
    }
}

fn join(id: &str, network: &str) -> ConnectRequest {
    ConnectRequest {
        container_id: id.into(),
        container_name: format!("proj-{id}"),
        network: network.into(),
        aliases: vec!["web".into()],
        ..ConnectRequest::default()
    }
}

fn attaches(net: &Fake) -> Vec<crate::netlink::AttachSpec> {
    let calls = net.netlink.calls();
    calls
        .into_iter()
        .filter_map(|c| match c {
            Call::Attach(spec) => Some(spec),
            _ => None,
        })
        .collect()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn a_new_network_gets_the_first_default_subnet_no_host_route_overlaps() {
    let dir = tempfile::tempdir().unwrap();
    let net = manager(&dir, &["172.17.0.0/16", "10.0.0.0/8", "0.0.0.0/0"]);
    let record = block_on(net.ensure_network(&network("proj_front"))).unwrap();
    assert_eq!(record.subnets[0].subnet.to_string(), "172.18.0.0/16");
    assert_eq!(record.subnets[0].gateway, ip("172.18.0.1"));
    assert_eq!(record.bridge.len(), 15);
    let bridge = BridgeSpec {
        name: record.bridge.clone(),
        mtu: None,
        addresses: vec!["172.18.0.1/16".parse().unwrap()],
    };
    assert_eq!(
        net.netlink.calls(),
        vec![Call::HostRoutes, Call::EnsureBridge(bridge.clone())]
    );
    assert_eq!(net.dns.running(), vec!["proj_front".to_string()]);
    let rules = to_nft_text(&net.firewall.installed().expect("a table"));
    assert!(rules.contains(&format!("oifname != \"{}\" masquerade", record.bridge)));

    let again = block_on(net.ensure_network(&network("proj_front"))).unwrap();
    assert_eq!(again, record, "ensuring again changes nothing");
    let second = block_on(net.ensure_network(&network("proj_back"))).unwrap();
    assert_eq!(second.subnets[0].subnet.to_string(), "172.19.0.0/16");
}

#[test]
fn an_external_network_must_exist_and_is_never_created() {
    let dir = tempfile::tempdir().unwrap();
    let net = manager(&dir, &[]);
    let request = NetworkRequest {
        external: true,
        ..network("shared")
    };
    let err = block_on(net.ensure_network(&request)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "network shared declared as external could not be found"
    );
    assert!(net.netlink.calls().is_empty());
    assert!(net.list().unwrap().is_empty());
}

#[test]
fn connecting_leases_addresses_in_order_and_names_interfaces_eth0_then_eth1() {
    let dir = tempfile::tempdir().unwrap();
    let net = manager(&dir, &[]);
    block_on(net.ensure_network(&network("front"))).unwrap();
    block_on(net.ensure_network(&network("back"))).unwrap();
    // Host port 0: the check that a host process holds it never fires.
    let port = PortMapping {
        host_ip: Some(ip("127.0.0.1")),
        host_port: 0,
        container_port: 80,
        count: 1,
        protocol: Protocol::Tcp,
    };
    let first = block_on(net.connect(&ConnectRequest {
        ports: vec![port],
        ..join("c1", "front")
    }))
    .unwrap();
    let second = block_on(net.connect(&join("c1", "back"))).unwrap();
    let other = block_on(net.connect(&join("c2", "front"))).unwrap();
    assert_eq!(
        (first.ifname.as_str(), second.ifname.as_str()),
        ("eth0", "eth1")
    );
    assert_eq!(first.addresses[0].to_string(), "172.17.0.2/16");
    assert_eq!(second.addresses[0].to_string(), "172.18.0.2/16");
    assert_eq!(other.addresses[0].to_string(), "172.17.0.3/16");
    assert_eq!(first.mac, "02:42:ac:11:00:02");
    let specs = attaches(&net);
    assert_eq!(specs[0].gateways, vec![ip("172.17.0.1")], "default route");
    assert!(specs[1].gateways.is_empty(), "only one default route");
    // c1's endpoints, in interface order; c2 has one, c3 none.
    let of = |id: &str| -> Vec<String> {
        net.endpoints_of_container(id)
            .unwrap()
            .into_iter()
            .map(|e| format!("{} {}", e.ifname, e.network))
            .collect()
    };
    assert_eq!(of("c1"), ["eth0 front", "eth1 back"]);
    assert_eq!(of("c2"), ["eth0 front"]);
    assert!(of("c3").is_empty());
    // Connecting again is a no-op returning the endpoint.
    assert_eq!(block_on(net.connect(&join("c1", "front"))).unwrap(), first);
    assert_eq!(attaches(&net).len(), 3);
    // The DNS table answers c2 with c1's addresses on both networks.
    let table = load_table(&net.paths.dns_table()).unwrap();
    let found = table.lookup(ip("172.17.0.3"), "proj-c1", RecordKind::A, 0);
    assert_eq!(found, Lookup::Found(vec![ip("172.17.0.2")]));
    let rules = to_nft_text(&net.firewall.installed().unwrap());
    assert!(
        rules.contains("ip daddr 127.0.0.1 tcp dport 0 dnat ip to 172.17.0.2:80"),
        "{rules}"
    );
}

#[test]
fn a_failed_attach_releases_the_address_and_leaves_no_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let net = manager(&dir, &[]);
    block_on(net.ensure_network(&network("front"))).unwrap();
    net.netlink.fail_on_call(1);
    assert!(block_on(net.connect(&join("c1", "front"))).is_err());
    assert!(net.paths.endpoints_of("front").unwrap().is_empty());
    let leases = crate::ipam::Leases::load(&net.paths.leases("front"))
        .unwrap()
        .unwrap();
    assert_eq!(leases.iter().count(), 0, "the lease was released");
    let retried = block_on(net.connect(&join("c1", "front"))).unwrap();
    assert_eq!(retried.addresses[0].to_string(), "172.17.0.2/16");
}

#[test]
fn a_lease_whose_owner_has_no_endpoint_is_freed_by_the_next_connect() {
    let dir = tempfile::tempdir().unwrap();
    let net = manager(&dir, &[]);
    block_on(net.ensure_network(&network("front"))).unwrap();
    block_on(net.connect(&join("c1", "front"))).unwrap();
    block_on(net.connect(&join("c2", "front"))).unwrap();
    // c1 is removed, and a crash brings back its lease (freed without
    // waiting for the disk) but not its endpoint record.
    let path = net.paths.leases("front");
    let before = std::fs::read(&path).unwrap();
    block_on(net.remove_container("c1")).unwrap();
    std::fs::write(&path, before).unwrap();
    let leases = || {
        crate::ipam::Leases::load(&path)
            .unwrap()
            .unwrap()
            .iter()
            .map(|(a, o)| format!("{a} {o}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(leases(), ["172.17.0.2 c1", "172.17.0.3 c2"]);
    // The next container gets c1's old address; c2 keeps its own.
    let third = block_on(net.connect(&join("c3", "front"))).unwrap();
    assert_eq!(third.addresses[0].to_string(), "172.17.0.2/16");
    assert_eq!(leases(), ["172.17.0.2 c3", "172.17.0.3 c2"]);
}

#[test]
fn a_network_in_use_is_kept_and_removing_the_last_deletes_our_table() {
    let dir = tempfile::tempdir().unwrap();
    let net = manager(&dir, &[]);
    let record = block_on(net.ensure_network(&network("front"))).unwrap();
    let endpoint = block_on(net.connect(&join("c1", "front"))).unwrap();
    let err = block_on(net.remove_network("front")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "network front has active endpoints: proj-c1"
    );
    block_on(net.remove_container("c1")).unwrap();
    block_on(net.remove_network("front")).unwrap();
    let calls = net.netlink.calls();
    assert!(calls.contains(&Call::RemoveLink(endpoint.host_veth)));
    assert!(calls.contains(&Call::RemoveLink(record.bridge)));
    assert!(net.netlink.links().is_empty());
    assert_eq!(
        net.firewall.calls().last(),
        Some(&crate::firewall::Call::Remove)
    );
    assert!(net.dns.running().is_empty());
    assert!(!net.paths.network_dir("front").exists());
    block_on(net.remove_network("front")).unwrap();
}

#[test]
fn a_network_is_removed_with_its_stopped_containers_detached_and_their_removals_still_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let net = manager(&dir, &[]);
    let record = block_on(net.ensure_network(&network("front"))).unwrap();
    let one = block_on(net.connect(&join("c1", "front"))).unwrap();
    let two = block_on(net.connect(&join("c2", "front"))).unwrap();
    // c2 is not among the detached: it refuses the removal, and nothing goes.
    let err = block_on(net.remove_network_detaching("front", &["c1".into()])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "network front has active endpoints: proj-c2"
    );
    assert_eq!(net.list().unwrap().len(), 1);
    // c1's removal already deleted its veth; c2's did not start yet.
    block_on(net.netlink.remove_link(&one.host_veth)).unwrap();
    let both = ["c1".to_string(), "c2".to_string()];
    block_on(net.remove_network_detaching("front", &both)).unwrap();
    assert!(net.list().unwrap().is_empty());
    assert!(!net.paths.network_dir("front").exists());
    assert!(!net.paths.removing_dir("front").exists());
    assert!(net.netlink.links().is_empty(), "bridge and veths are gone");
    let calls = net.netlink.calls();
    let bridge_at = calls
        .iter()
        .position(|c| *c == Call::RemoveLink(record.bridge.clone()));
    let veth_at = calls
        .iter()
        .rposition(|c| *c == Call::RemoveLink(two.host_veth.clone()));
    assert!(
        bridge_at < veth_at,
        "the veths go after the bridge: {calls:?}"
    );
    assert_eq!(
        net.firewall.calls().last(),
        Some(&crate::firewall::Call::Remove)
    );
    assert!(net.dns.running().is_empty());
    let table = load_table(&net.paths.dns_table()).unwrap();
    assert!(table.endpoints.is_empty(), "{table:?}");
    // The containers' own removals find nothing left to detach, and make
    // nothing of the network again.
    block_on(net.remove_container("c1")).unwrap();
    block_on(net.remove_container("c2")).unwrap();
    assert!(!net.paths.network_dir("front").exists());
    assert!(net.endpoints_of_container("c2").unwrap().is_empty());
}

#[test]
fn a_network_being_removed_is_listed_by_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let net = manager(&dir, &[]);
    block_on(net.ensure_network(&network("front"))).unwrap();
    block_on(net.ensure_network(&network("back"))).unwrap();
    block_on(net.connect(&join("c1", "front"))).unwrap();
    // As between the move aside and the end of a removal.
    std::fs::rename(
        net.paths.network_dir("front"),
        net.paths.removing_dir("front"),
    )
    .unwrap();
    let names: Vec<String> = net.list().unwrap().into_iter().map(|n| n.name).collect();
    assert_eq!(names, ["back"]);
    assert!(net.paths.all_endpoints().unwrap().is_empty());
    assert!(net.inspect("front").is_err());
}

#[test]
fn a_bridge_that_cannot_be_deleted_keeps_the_network_for_another_try() {
    let dir = tempfile::tempdir().unwrap();
    let net = manager(&dir, &[]);
    let record = block_on(net.ensure_network(&network("front"))).unwrap();
    net.netlink.fail_on_call(1);
    assert!(block_on(net.remove_network("front")).is_err());
    // The record is kept, so the network can be removed again; its rules
    // are made again.
    assert!(net.paths.network_dir("front").join("network.json").exists());
    assert!(!net.paths.removing_dir("front").exists());
    assert!(net.firewall.installed().is_some());
    assert_eq!(net.list().unwrap().len(), 1);
    assert!(net.netlink.links().contains(&record.bridge));
    block_on(net.remove_network("front")).unwrap();
    assert!(!net.paths.network_dir("front").exists());
    assert!(net.netlink.links().is_empty());
    assert_eq!(
        net.firewall.calls().last(),
        Some(&crate::firewall::Call::Remove)
    );
}

#[test]
fn an_internal_first_network_gives_no_default_route_and_the_next_routed_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let net = manager(&dir, &[]);
    let internal = NetworkRequest {
        internal: true,
        ..network("private")
    };
    block_on(net.ensure_network(&internal)).unwrap();
    let front = block_on(net.ensure_network(&network("front"))).unwrap();
    block_on(net.connect(&join("c1", "private"))).unwrap();
    block_on(net.connect(&join("c1", "front"))).unwrap();
    let specs = attaches(&net);
    assert!(specs[0].gateways.is_empty());
    assert_eq!(specs[1].gateways, vec![front.subnets[0].gateway]);
    let files = net
        .container_files(&FilesRequest {
            container_id: "c1".into(),
            hostname: "c1".into(),
            ..FilesRequest::default()
        })
        .unwrap();
    let nameserver = format!("nameserver {}\n", front.subnets[0].gateway);
    assert!(
        files.resolv_conf.contains(&nameserver),
        "{}",
        files.resolv_conf
    );
}

#[test]
fn prune_removes_endpoints_whose_namespace_is_gone_links_without_records_and_unused_networks() {
    let dir = tempfile::tempdir().unwrap();
    let net = manager(&dir, &[]);
    block_on(net.ensure_network(&network("front"))).unwrap();
    block_on(net.connect(&join("c1", "front"))).unwrap();
    net.netlink.add_link("rcv0123456789ab");
    net.netlink.add_link("veth0123456");
    // No namespace is mounted in this test: c1 counts as crashed.
    let removed = block_on(net.prune(true)).unwrap();
    assert_eq!(
        removed,
        vec![
            "endpoint proj-c1 on front".to_string(),
            "network front".to_string(),
            "link rcv0123456789ab".to_string(),
        ]
    );
    assert_eq!(
        net.netlink.links().into_iter().collect::<Vec<_>>(),
        vec!["veth0123456".to_string()],
        "links that are not ours stay"
    );
}

#[test]
fn a_removal_cut_short_by_a_crash_is_finished_by_prune_and_leaves_no_dns_server_behind() {
    let dir = tempfile::tempdir().unwrap();
    let net = manager(&dir, &[]);
    let old = block_on(net.ensure_network(&network("front"))).unwrap();
    let back = block_on(net.ensure_network(&network("back"))).unwrap();
    // A removal of each crashed right after moving its directory aside,
    // before it stopped the DNS server or deleted the bridge.
    for name in ["front", "back"] {
        std::fs::rename(net.paths.network_dir(name), net.paths.removing_dir(name)).unwrap();
    }
    // A new network of the same name gets a DNS server of its own, not the
    // one left running for the old network's addresses.
    let new = block_on(net.ensure_network(&network("front"))).unwrap();
    assert_ne!(new.id, old.id);
    assert_eq!(net.dns.serving("front"), Some(new.id.clone()));
    assert_eq!(net.dns.running(), ["back", "front"]);
    // Prune finishes both removals: the directories go, the DNS server of
    // the network that is gone too, the old bridge with the links.
    let removed = block_on(net.prune(false)).unwrap();
    let mut bridges = [
        format!("link {}", old.bridge),
        format!("link {}", back.bridge),
    ];
    bridges.sort();
    let mut expected = vec![
        "leftovers of the removal of network back".to_string(),
        "leftovers of the removal of network front".to_string(),
    ];
    expected.extend(bridges);
    assert_eq!(removed, expected);
    assert!(!net.paths.removing_dir("front").exists());
    assert!(!net.paths.removing_dir("back").exists());
    assert_eq!(net.dns.running(), ["front"]);
    assert_eq!(net.dns.serving("front"), Some(new.id));
    assert_eq!(net.list().unwrap().len(), 1);
    assert!(
        block_on(net.prune(false)).unwrap().is_empty(),
        "nothing left"
    );
}

#[test]
fn an_endpoint_whose_veth_vanished_is_made_again_on_connect() {
    let dir = tempfile::tempdir().unwrap();
    let net = manager(&dir, &[]);
    block_on(net.ensure_network(&network("front"))).unwrap();
    let first = block_on(net.connect(&join("c1", "front"))).unwrap();
    // A reboot: links are gone, records stay.
    block_on(net.netlink.remove_link(&first.host_veth)).unwrap();
    let again = block_on(net.connect(&join("c1", "front"))).unwrap();
    assert_eq!(again, first, "same address, same names");
    assert_eq!(attaches(&net).len(), 2, "attached anew");
    assert!(net.netlink.links().contains(&first.host_veth));
}

#[test]
fn an_unchanged_ruleset_is_not_applied_again_unless_a_network_is_ensured() {
    let dir = tempfile::tempdir().unwrap();
    let net = manager(&dir, &[]);
    block_on(net.ensure_network(&network("front"))).unwrap();
    let applied = net.firewall.calls().len();
    block_on(net.connect(&join("c1", "front"))).unwrap();
    block_on(net.disconnect("c1", "front")).unwrap();
    assert_eq!(net.firewall.calls().len(), applied, "no port, no change");
    block_on(net.ensure_network(&network("front"))).unwrap();
    assert!(net.firewall.calls().len() > applied, "ensure re-applies");
}

#[test]
fn a_network_whose_bridge_was_deleted_by_hand_is_seen_missing_and_still_removed() {
    let dir = tempfile::tempdir().unwrap();
    let net = manager(&dir, &[]);
    let record = block_on(net.ensure_network(&network("front"))).unwrap();
    assert!(block_on(net.link_exists(&record.bridge)).unwrap());
    // `ip link del <bridge>`: the kernel forgets it, the records stay.
    block_on(net.netlink.remove_link(&record.bridge)).unwrap();
    assert!(!block_on(net.link_exists(&record.bridge)).unwrap());
    assert!(
        net.netlink
            .calls()
            .contains(&Call::LinkExists(record.bridge.clone()))
    );
    block_on(net.remove_network("front")).unwrap();
    assert!(!net.paths.network_dir("front").exists());
    assert!(net.dns.running().is_empty());
    assert_eq!(
        net.firewall.calls().last(),
        Some(&crate::firewall::Call::Remove)
    );
    let again = block_on(net.ensure_network(&network("front"))).unwrap();
    assert!(block_on(net.link_exists(&again.bridge)).unwrap());
}
