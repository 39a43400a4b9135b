//! Root tests of whole networks against the real kernel: bridges, veths,
//! the nftables table, the DNS daemons and published ports. Each test runs
//! in a fresh network namespace; "containers" are network namespaces of the
//! test's own with busybox started in them, so the network layer is tested
//! without the runtime.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use rcompose_netctl::firewall::NftFirewall;
use rcompose_netctl::manager::{
    ConnectRequest, DnsLauncher, FilesRequest, NetPaths, NetworkRequest, Networks,
};
use rcompose_netctl::model::{PortMapping, Protocol};
use rcompose_netctl::netlink::LinuxNetlink;
use rcompose_netctl::netns;
use rcompose_netctl::testing::{
    ThreadNetns, assert_no_links_or_table_of_ours, block_on, http_get, is_root, run,
};

type Net = Networks<LinuxNetlink, NftFirewall>;

/// Everything a test made, undone even when it fails: processes it
/// started (by pid), DNS daemons, namespace mounts. The network namespace
/// itself, with every link and the nftables table in it, goes away when
/// the last of those is gone.
struct Env {
    _dir: tempfile::TempDir,
    root: PathBuf,
    paths: NetPaths,
    children: Vec<Child>,
    _netns: ThreadNetns,
}

impl Drop for Env {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for entry in std::fs::read_dir(self.paths.run.join("dns"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(pid) = name
                .strip_suffix(".pid")
                .and_then(|network| rcompose_netctl::manager::dns_pid(&self.paths, network))
            {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        for entry in std::fs::read_dir(self.paths.run.join("netns"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = netns::remove(&entry.path());
        }
    }
}

impl Env {
    fn new() -> Env {
        assert!(is_root(), "needs root; scripts/test.sh runs it when root");
        let netns = ThreadNetns::enter_new().unwrap();
        run(&["ip", "link", "set", "lo", "up"]);
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let paths = NetPaths::new(&root.join("state"), &root.join("run"));
        Env {
            _dir: dir,
            root,
            paths,
            children: Vec::new(),
            _netns: netns,
        }
    }

    fn networks(&self) -> Net {
        // No upstream resolvers: nothing is ever forwarded off this machine.
        let resolv = self.root.join("host-resolv.conf");
        std::fs::write(&resolv, "# none\n").unwrap();
        let launcher = DnsLauncher {
            program: env!("CARGO_BIN_EXE_rcompose-test-dns").into(),
            args: vec!["__dns".into()],
            host_resolv_conf: resolv,
        };
        Networks::new(
            self.paths.clone(),
            LinuxNetlink::new(),
            NftFirewall::new(),
            launcher,
        )
    }

    /// Makes a "container": a namespace, connected, with its own
    /// /etc/hosts and /etc/resolv.conf files rendered by netctl.
    fn container(&self, net: &Net, id: &str, request: ConnectRequest) -> Container {
        let netns = block_on(async { net.ensure_netns(id) }).unwrap();
        block_on(net.connect(&ConnectRequest {
            container_id: id.into(),
            ..request
        }))
        .unwrap();
        let files = net
            .container_files(&FilesRequest {
                container_id: id.into(),
                hostname: id.into(),
                ..Default::default()
            })
            .unwrap();
        let etc = self.root.join("etc").join(id);
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("hosts"), files.hosts).unwrap();
        std::fs::write(etc.join("resolv.conf"), files.resolv_conf).unwrap();
        Container { netns, etc }
    }

    /// Starts busybox httpd on port 8080 in a container, serving `body`.
    fn serve(&mut self, c: &Container, body: &str) {
        let www = c.etc.join("www");
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("index.html"), body).unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net={}", c.netns.display()))
            .args(["busybox", "httpd", "-f", "-p", "8080", "-h"])
            .arg(&www)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.children.push(child);
        wait_for(|| {
            c.sh("busybox timeout 1 busybox wget -q -O- http://127.0.0.1:8080/")
                .status
                .success()
        });
    }

    /// "Outside": a namespace of the test's own behind an uplink
    /// (198.51.100.1 here, 198.51.100.2 there), serving "outside" on 8080.
    /// It has no route back to any bridge: only masqueraded traffic works.
    fn outside(&mut self) -> Container {
        let outside = Container {
            netns: self.paths.run.join("netns").join("outside"),
            etc: self.root.join("etc").join("outside"),
        };
        netns::create(&outside.netns).unwrap();
        std::fs::create_dir_all(&outside.etc).unwrap();
        std::fs::write(outside.etc.join("hosts"), "127.0.0.1 localhost\n").unwrap();
        std::fs::write(outside.etc.join("resolv.conf"), "").unwrap();
        let ns = outside.netns.to_str().unwrap();
        run(&[
            "ip", "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink1", "netns", ns,
        ]);
        run(&["ip", "addr", "add", "198.51.100.1/24", "dev", "uplink0"]);
        run(&["ip", "link", "set", "uplink0", "up"]);
        let flag = format!("--net={ns}");
        for args in [
            &["ip", "addr", "add", "198.51.100.2/24", "dev", "uplink1"][..],
            &["ip", "link", "set", "uplink1", "up"],
        ] {
            let mut full = vec!["nsenter", flag.as_str()];
            full.extend_from_slice(args);
            run(&full);
        }
        self.serve(&outside, "outside");
        outside
    }
}

struct Container {
    netns: PathBuf,
    etc: PathBuf,
}

impl Container {
    /// Runs a shell line inside the container's network namespace, with its
    /// own /etc/hosts and /etc/resolv.conf mounted in a private mount
    /// namespace (so the host's files are never touched).
    fn sh(&self, line: &str) -> Output {
        let script = format!(
            "mount --bind {etc}/hosts /etc/hosts && mount --bind {etc}/resolv.conf /etc/resolv.conf && {line}",
            etc = self.etc.display()
        );
        Command::new("nsenter")
            .arg(format!("--net={}", self.netns.display()))
            .args([
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "busybox",
                "sh",
                "-c",
                &script,
            ])
            .output()
            .unwrap()
    }

    fn fetch(&self, url: &str) -> Result<String, String> {
        let out = // busybox 1.35 crashes on wget -T; timeout does the same job.
        self.sh(&format!("busybox timeout 2 busybox wget -q -O- {url}"));
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// The addresses `nslookup` reports for `name` through the container's
    /// nameserver.
    fn resolve(&self, name: &str) -> Vec<IpAddr> {
        let out = self.sh(&format!("busybox nslookup -type=a {name}"));
        let text = String::from_utf8_lossy(&out.stdout);
        let mut addrs: Vec<IpAddr> = text
            .lines()
            .skip_while(|l| !l.starts_with("Name:"))
            .filter_map(|l| l.strip_prefix("Address:"))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        addrs.sort();
        addrs
    }
}

fn wait_for(mut ok: impl FnMut() -> bool) {
    for _ in 0..200 {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("condition not met in 5 s");
}

fn front() -> NetworkRequest {
    NetworkRequest {
        name: "proj_front".into(),
        ..Default::default()
    }
}

fn web(name: &str) -> ConnectRequest {
    ConnectRequest {
        container_name: name.into(),
        network: "proj_front".into(),
        aliases: vec!["web".into(), "www".into()],
        ..Default::default()
    }
}

/// A container on `network` with no alias or port.
fn plain(name: &str, network: &str) -> ConnectRequest {
    ConnectRequest {
        container_name: name.into(),
        network: network.into(),
        ..Default::default()
    }
}

fn port(host_ip: Option<&str>, host_port: u16) -> PortMapping {
    PortMapping {
        host_ip: host_ip.map(|ip| ip.parse().unwrap()),
        host_port,
        container_port: 8080,
        count: 1,
        protocol: Protocol::Tcp,
    }
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn containers_on_one_network_reach_each_other_by_service_alias_and_container_name() {
    let mut env = Env::new();
    let net = env.networks();
    block_on(net.ensure_network(&front())).unwrap();
    let web1 = env.container(&net, "web1", web("proj-web-1"));
    env.serve(&web1, "hello from web");
    let client = env.container(&net, "client1", plain("proj-client-1", "proj_front"));
    for url in [
        "http://web:8080/",
        "http://www:8080/",
        "http://proj-web-1:8080/",
        "http://web.proj_front:8080/",
    ] {
        assert_eq!(client.fetch(url).as_deref(), Ok("hello from web"), "{url}");
    }
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_container_on_another_network_can_neither_resolve_nor_reach_web() {
    let mut env = Env::new();
    let net = env.networks();
    block_on(net.ensure_network(&front())).unwrap();
    block_on(net.ensure_network(&NetworkRequest {
        name: "proj_back".into(),
        ..Default::default()
    }))
    .unwrap();
    let web1 = env.container(&net, "web1", web("proj-web-1"));
    env.serve(&web1, "hello");
    let other = env.container(&net, "other1", plain("proj-other-1", "proj_back"));
    assert_eq!(other.resolve("web"), Vec::<IpAddr>::new());
    let web_ip = net.endpoints_of_container("web1").unwrap()[0].addresses[0].addr();
    assert!(
        other.fetch(&format!("http://{web_ip}:8080/")).is_err(),
        "isolation between networks"
    );
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn two_replicas_of_a_service_resolve_to_both_addresses() {
    let env = Env::new();
    let net = env.networks();
    block_on(net.ensure_network(&front())).unwrap();
    env.container(&net, "web1", web("proj-web-1"));
    env.container(&net, "web2", web("proj-web-2"));
    let client = env.container(&net, "client1", plain("proj-client-1", "proj_front"));
    let mut expected: Vec<IpAddr> = ["web1", "web2"]
        .iter()
        .map(|id| net.endpoints_of_container(id).unwrap()[0].addresses[0].addr())
        .collect();
    expected.sort();
    assert_eq!(client.resolve("web"), expected);
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn published_ports_answer_on_loopback_on_the_hosts_own_address_and_from_another_host() {
    let mut env = Env::new();
    // The test namespace's "host address", on a link of its own.
    run(&[
        "ip", "link", "add", "hostif0", "type", "veth", "peer", "name", "hostif1",
    ]);
    run(&["ip", "addr", "add", "192.0.2.10/24", "dev", "hostif0"]);
    run(&["ip", "link", "set", "hostif0", "up"]);
    run(&["ip", "link", "set", "hostif1", "up"]);
    let net = env.networks();
    block_on(net.ensure_network(&front())).unwrap();
    let web1 = env.container(
        &net,
        "web1",
        ConnectRequest {
            ports: vec![port(Some("127.0.0.1"), 18080), port(None, 18081)],
            ..web("proj-web-1")
        },
    );
    env.serve(&web1, "published");
    let local: SocketAddr = "127.0.0.1:18080".parse().unwrap();
    assert!(http_get(local).unwrap().ends_with("published"));
    let all: SocketAddr = "192.0.2.10:18081".parse().unwrap();
    assert!(http_get(all).unwrap().ends_with("published"));
    let not_published: SocketAddr = "192.0.2.10:18080".parse().unwrap();
    assert!(
        http_get(not_published).is_err(),
        "18080 is bound to 127.0.0.1 only"
    );
    // From another host, through the uplink.
    let outside = env.outside();
    assert_eq!(
        outside.fetch("http://198.51.100.1:18081/").as_deref(),
        Ok("published")
    );
    assert!(outside.fetch("http://198.51.100.1:18080/").is_err());
    // Hairpin: the container reaches its own published port.
    assert_eq!(
        web1.fetch("http://192.0.2.10:18081/").as_deref(),
        Ok("published")
    );
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_host_port_published_twice_is_refused_naming_the_container_and_port() {
    let env = Env::new();
    let net = env.networks();
    block_on(net.ensure_network(&front())).unwrap();
    env.container(
        &net,
        "web1",
        ConnectRequest {
            ports: vec![port(None, 18080)],
            ..web("proj-web-1")
        },
    );
    block_on(async { net.ensure_netns("web2") }).unwrap();
    let err = block_on(net.connect(&ConnectRequest {
        container_id: "web2".into(),
        ports: vec![port(Some("127.0.0.1"), 18080)],
        ..web("proj-web-2")
    }))
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "container proj-web-2: host port 18080/tcp is already in use by proj-web-1"
    );
    // A port a host process listens on is refused too.
    let _listener = std::net::TcpListener::bind("127.0.0.1:18090").unwrap();
    let err = block_on(net.connect(&ConnectRequest {
        container_id: "web2".into(),
        ports: vec![port(Some("127.0.0.1"), 18090)],
        ..web("proj-web-2")
    }))
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "container proj-web-2: host port 18090/tcp is already in use"
    );
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn teardown_leaves_no_bridge_veth_nft_table_lease_or_dns_server() {
    let env = Env::new();
    let net = env.networks();
    block_on(net.ensure_network(&front())).unwrap();
    block_on(net.ensure_network(&front())).unwrap(); // idempotent
    env.container(
        &net,
        "web1",
        ConnectRequest {
            ports: vec![port(None, 18080)],
            ..web("proj-web-1")
        },
    );
    let in_use = block_on(net.remove_network("proj_front"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        in_use,
        "network proj_front has active endpoints: proj-web-1"
    );
    let dns = rcompose_netctl::manager::dns_pid(&env.paths, "proj_front").expect("dns daemon runs");
    block_on(net.remove_container("web1")).unwrap();
    block_on(net.remove_network("proj_front")).unwrap();
    block_on(net.remove_network("proj_front")).unwrap(); // already gone

    assert_no_links_or_table_of_ours();
    assert!(
        !env.paths.network_dir("proj_front").exists(),
        "records and leases removed"
    );
    assert!(
        !Path::new(&format!("/proc/{dns}")).exists(),
        "dns daemon stopped"
    );
    assert!(!env.paths.netns("web1").exists(), "netns file removed");
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_network_whose_bridge_was_deleted_by_hand_is_seen_missing_and_removed_cleanly() {
    let mut env = Env::new();
    let net = env.networks();
    let record = block_on(net.ensure_network(&front())).unwrap();
    let dns = rcompose_netctl::manager::dns_pid(&env.paths, "proj_front").expect("dns daemon runs");
    env.container(&net, "old1", web("proj-web-1"));
    assert!(block_on(net.link_exists(&record.bridge)).unwrap());
    run(&["ip", "link", "del", &record.bridge]);
    assert!(!block_on(net.link_exists(&record.bridge)).unwrap());

    // What a plan does with a broken network: its containers go, then it.
    block_on(net.remove_container("old1")).unwrap();
    block_on(net.remove_network("proj_front")).unwrap();

    assert_no_links_or_table_of_ours();
    assert!(
        !env.paths.network_dir("proj_front").exists(),
        "records and leases removed"
    );
    assert!(
        !Path::new(&format!("/proc/{dns}")).exists(),
        "dns daemon stopped"
    );
    // Created again, it is whole: its bridge, DNS and forwarding work.
    let again = block_on(net.ensure_network(&front())).unwrap();
    assert!(block_on(net.link_exists(&again.bridge)).unwrap());
    let web1 = env.container(&net, "web1", web("proj-web-1"));
    env.serve(&web1, "healed");
    let client = env.container(&net, "client1", plain("proj-client-1", "proj_front"));
    assert_eq!(client.fetch("http://web:8080/").as_deref(), Ok("healed"));
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn an_ipv6_network_gives_containers_addresses_that_names_resolve_to_and_that_answer() {
    let mut env = Env::new();
    let net = env.networks();
    let request = NetworkRequest {
        enable_ipv6: true,
        ..front()
    };
    let record = block_on(net.ensure_network(&request)).unwrap();
    assert_eq!(record.subnets.len(), 2, "{record:?}");
    let web1 = env.container(&net, "web1", web("proj-web-1"));
    env.serve(&web1, "over v6");
    let client = env.container(&net, "client1", plain("proj-client-1", "proj_front"));
    let v6 = net.endpoints_of_container("web1").unwrap()[0]
        .addresses
        .iter()
        .find(|a| a.addr().is_ipv6())
        .expect("an IPv6 address")
        .addr();
    let out = client.sh("busybox nslookup -type=aaaa web");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&v6.to_string()), "{text}");
    assert_eq!(
        client.fetch(&format!("http://[{v6}]:8080/")).as_deref(),
        Ok("over v6")
    );
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn containers_reach_outside_masqueraded_except_on_an_internal_network() {
    let mut env = Env::new();
    let _outside = env.outside();

    let net = env.networks();
    block_on(net.ensure_network(&front())).unwrap();
    let internal = NetworkRequest {
        name: "proj_private".into(),
        internal: true,
        ..Default::default()
    };
    block_on(net.ensure_network(&internal)).unwrap();
    let routed = env.container(&net, "web1", web("proj-web-1"));
    let private = env.container(&net, "db1", plain("proj-db-1", "proj_private"));
    // An answer shows the request left masqueraded behind the uplink.
    assert_eq!(
        routed.fetch("http://198.51.100.2:8080/").as_deref(),
        Ok("outside")
    );
    assert!(private.fetch("http://198.51.100.2:8080/").is_err());
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_foreign_forward_drop_policy_does_not_cut_our_networks_off() {
    let mut env = Env::new();
    let _outside = env.outside();
    // What iptables-nft leaves after `iptables -P FORWARD DROP`.
    run(&["nft", "add", "table", "ip", "filter"]);
    run(&[
        "nft",
        "add chain ip filter FORWARD { type filter hook forward priority 0; policy drop; }",
    ]);
    let net = env.networks();
    block_on(net.ensure_network(&front())).unwrap();
    let web1 = env.container(&net, "web1", web("proj-web-1"));
    env.serve(&web1, "same bridge");
    let client = env.container(&net, "client1", plain("proj-client-1", "proj_front"));
    assert_eq!(
        client.fetch("http://web:8080/").as_deref(),
        Ok("same bridge")
    );
    assert_eq!(
        client.fetch("http://198.51.100.2:8080/").as_deref(),
        Ok("outside")
    );
    let chain = run(&["nft", "-j", "list", "chain", "ip", "filter", "FORWARD"]);
    assert_eq!(
        chain.matches("\"comment\": \"rcompose\"").count(),
        2,
        "{chain}"
    );

    block_on(net.remove_container("web1")).unwrap();
    block_on(net.remove_container("client1")).unwrap();
    block_on(net.remove_network("proj_front")).unwrap();
    let chain = run(&["nft", "-j", "list", "chain", "ip", "filter", "FORWARD"]);
    assert!(!chain.contains("rcompose"), "our rules are gone: {chain}");
    assert!(
        chain.contains("\"policy\": \"drop\""),
        "the foreign policy stays: {chain}"
    );
}
