//! `rcompose network` and `rcompose container run --network` end to end:
//! real containers from an image pulled from a registry on 127.0.0.1, on
//! bridges, finding each other by name through the embedded DNS, isolated
//! between networks, with a published port. Each test runs in a fresh
//! network namespace (entered after the pull), so nothing touches the host's
//! links or firewall. Root tests: `#[ignore]`d so that a non-root run reports
//! them as skipped; `scripts/test.sh` runs them when root.

use rcompose_netctl::testing::{ThreadNetns, assert_no_links_or_table_of_ours, http_get, run};

const CONTAINERS: [&str; 4] = ["proj-web-1", "proj-web-2", "proj-client-1", "proj-other-1"];

mod common;

struct Env(common::Rcompose);

impl std::ops::Deref for Env {
    type Target = common::Rcompose;
    fn deref(&self) -> &common::Rcompose {
        &self.0
    }
}

impl Env {
    fn ip_of(&self, network: &str, container: &str) -> String {
        let inspect: serde_json::Value =
            serde_json::from_str(&self.ok(&["network", "inspect", network])).unwrap();
        let endpoint = inspect["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["container_name"] == container)
            .unwrap();
        let cidr = endpoint["addresses"][0].as_str().unwrap();
        cidr.split('/').next().unwrap().to_string()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for name in CONTAINERS {
            let _ = self.rcompose(&["container", "rm", "--force", name]);
        }
        let _ = self.rcompose(&["network", "rm", "front"]);
        let _ = self.rcompose(&["network", "rm", "back"]);
    }
}

fn nslookup(env: &Env, container: &str, name: &str) -> Vec<String> {
    let out = env.rcompose(&["container", "exec", container, "nslookup", "-type=a", name]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut addrs: Vec<String> = text
        .lines()
        .skip_while(|l| !l.starts_with("Name:"))
        .filter_map(|l| l.strip_prefix("Address:"))
        .map(|a| a.trim().to_string())
        .collect();
    addrs.sort();
    addrs
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn containers_find_each_other_by_name_only_on_shared_networks_and_publish_ports() {
    // Pulled while the registry on the host's loopback is reachable.
    let (_registry, cli, image) = common::with_web_image("test/web:1", b"hello from web");
    let _netns = ThreadNetns::enter_new().unwrap();
    run(&["ip", "link", "set", "lo", "up"]);
    let env = Env(cli);

    env.ok(&["network", "create", "front"]);
    env.ok(&["network", "create", "back"]);
    let httpd = ["httpd", "-f", "-p", "8080", "-h", "/www"];
    let web = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "container",
            "run",
            "--name",
            name,
            "--network",
            "front",
            "--network-alias",
            "web",
        ];
        args.extend_from_slice(extra);
        args.push(&image);
        args.extend_from_slice(&httpd);
        env.ok(&args);
    };
    web("proj-web-1", &["--publish", "127.0.0.1:18080:8080"]);
    web("proj-web-2", &[]);
    for (name, network) in [("proj-client-1", "front"), ("proj-other-1", "back")] {
        env.ok(&[
            "container",
            "run",
            "--name",
            name,
            "--network",
            network,
            &image,
            "sleep",
            "600",
        ]);
    }

    // By service alias and by container name, from a container on the same network.
    for url in [
        "http://web:8080/",
        "http://proj-web-1:8080/",
        "http://proj-web-2.front:8080/",
    ] {
        let page = env.ok(&[
            "container",
            "exec",
            "proj-client-1",
            "wget",
            "-q",
            "-O-",
            url,
        ]);
        assert_eq!(page, "hello from web", "{url}");
    }
    // Two replicas: the name resolves to both.
    let mut both = vec![
        env.ip_of("front", "proj-web-1"),
        env.ip_of("front", "proj-web-2"),
    ];
    both.sort();
    assert_eq!(nslookup(&env, "proj-client-1", "web"), both);
    // Another network: neither resolvable nor reachable.
    assert_eq!(nslookup(&env, "proj-other-1", "web"), Vec::<String>::new());
    let direct = format!("http://{}:8080/", env.ip_of("front", "proj-web-1"));
    let out = env.rcompose(&[
        "container",
        "exec",
        "proj-other-1",
        "timeout",
        "2",
        "wget",
        "-q",
        "-O-",
        &direct,
    ]);
    assert!(
        !out.status.success(),
        "a container on another network reached web"
    );
    // The published port answers on the host's loopback.
    assert!(
        http_get("127.0.0.1:18080".parse().unwrap())
            .unwrap()
            .ends_with("hello from web")
    );

    // Connect and disconnect while running: the client joins `back` as eth1.
    assert_eq!(
        nslookup(&env, "proj-client-1", "proj-other-1"),
        Vec::<String>::new()
    );
    env.ok(&["network", "connect", "back", "proj-client-1"]);
    let links = env.ok(&["container", "exec", "proj-client-1", "ip", "-o", "link"]);
    assert!(links.contains("eth1"), "{links}");
    let other = env.ip_of("back", "proj-other-1");
    assert_eq!(
        nslookup(&env, "proj-client-1", "proj-other-1"),
        vec![other.clone()]
    );
    env.ok(&[
        "container",
        "exec",
        "proj-client-1",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        &other,
    ]);
    env.ok(&["network", "disconnect", "back", "proj-client-1"]);
    assert_eq!(
        nslookup(&env, "proj-client-1", "proj-other-1"),
        Vec::<String>::new()
    );

    // Teardown leaves nothing of ours.
    let busy = env.rcompose(&["network", "rm", "front"]);
    assert!(String::from_utf8_lossy(&busy.stderr).contains("has active endpoints"));
    for name in CONTAINERS {
        env.ok(&["container", "rm", "--force", name]);
    }
    env.ok(&["network", "rm", "front", "back"]);
    assert_no_links_or_table_of_ours();
    let networks = env.0.dir.path().join("state/networks");
    let left: Vec<_> = std::fs::read_dir(&networks)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.iter()
            .all(|n| [".lock", "dns.json", "firewall.sha256", ".containers"]
                .contains(&n.to_str().unwrap())),
        "{left:?}"
    );
}
