//! Root tests of the link layer and namespace files against the real kernel,
//! each in a fresh network namespace of its own.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use rcompose_netctl::netlink::{AttachSpec, BridgeSpec, LinuxNetlink, Netlink};
use rcompose_netctl::netns;
use rcompose_netctl::testing::{ThreadNetns, block_on, is_root};

const ROOT: &str = "needs root; scripts/test.sh runs it when root";

/// Runs a command inside the namespace mounted at `ns` and returns stdout.
fn inside(ns: &Path, args: &[&str]) -> String {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn links_here() -> serde_json::Value {
    let out = Command::new("ip").args(["-j", "link"]).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

struct NetnsFile(std::path::PathBuf);
impl Drop for NetnsFile {
    fn drop(&mut self) {
        let _ = netns::remove(&self.0);
    }
}

fn spec(ns: &Path) -> AttachSpec {
    AttachSpec {
        bridge: "rc-test0".into(),
        host_veth: "vethtest0".into(),
        netns: ns.to_path_buf(),
        ifname: "eth0".into(),
        mac: [0x02, 0x42, 172, 30, 0, 2],
        addresses: vec!["172.30.0.2/24".parse().unwrap()],
        gateways: vec!["172.30.0.1".parse::<IpAddr>().unwrap()],
        mtu: Some(1400),
    }
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_container_namespace_gets_eth0_with_its_address_and_reaches_the_gateway() {
    assert!(is_root(), "{ROOT}");
    let _ns = ThreadNetns::enter_new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = NetnsFile(dir.path().join("c1"));
    netns::create(&file.0).unwrap();
    netns::create(&file.0).unwrap(); // idempotent
    assert!(netns::is_mounted(&file.0));
    let lo = inside(&file.0, &["ip", "-j", "link", "show", "lo"]);
    assert!(lo.contains("\"UP\""), "lo is up in a new namespace: {lo}");
    let nl = LinuxNetlink::new();
    block_on(async {
        let bridge = BridgeSpec {
            name: "rc-test0".into(),
            mtu: Some(1400),
            addresses: vec!["172.30.0.1/24".parse().unwrap()],
        };
        nl.ensure_bridge(&bridge).await.unwrap();
        nl.ensure_bridge(&bridge).await.unwrap(); // idempotent
        nl.attach(&spec(&file.0)).await.unwrap();
        let routes = nl.host_routes().await.unwrap();
        assert!(
            routes.contains(&"172.30.0.0/24".parse().unwrap()),
            "{routes:?}"
        );
    });
    let addr = inside(&file.0, &["ip", "-j", "addr", "show", "eth0"]);
    assert!(addr.contains("172.30.0.2"), "{addr}");
    assert!(addr.contains("02:42:ac:1e:00:02"), "{addr}");
    assert!(addr.contains("\"mtu\":1400"), "{addr}");
    let route = inside(&file.0, &["ip", "-j", "route", "show", "default"]);
    assert!(route.contains("172.30.0.1"), "{route}");
    inside(
        &file.0,
        &["busybox", "ping", "-c", "1", "-W", "2", "172.30.0.1"],
    );
    inside(
        &file.0,
        &["busybox", "ping", "-c", "1", "-W", "2", "127.0.0.1"],
    );
    block_on(async {
        nl.remove_link("vethtest0").await.unwrap();
        nl.remove_link("rc-test0").await.unwrap();
        nl.remove_link("rc-test0").await.unwrap(); // already gone
    });
    let links = links_here().to_string();
    assert!(
        !links.contains("rc-test0") && !links.contains("vethtest0"),
        "{links}"
    );
    netns::remove(&file.0).unwrap();
    assert!(!file.0.exists());
}
