//! Benchmarks of the networking layer: rendering and applying the nftables
//! table for 100 published ports, and connecting a container to a network
//! (veth pair, addresses, default route, records, DNS table and the whole
//! ruleset rewritten) and disconnecting it again.
//!
//! Invariants:
//! - the root benchmarks run in fresh network namespaces that only the
//!   calling thread enters (criterion measures on that thread), so the
//!   host's links, routes and ruleset are never touched; without root they
//!   are skipped with a line saying so, never reported as measured;
//! - nothing is sent outside 127.0.0.0/8 and the benchmark's namespaces: the
//!   DNS daemon gets an empty host resolv.conf, so it has no upstreams;
//! - what the benchmark makes goes away with it: a guard removes the
//!   container, the network and the DNS daemon at the end and on panic; if
//!   the process is killed instead, the DNS daemon (this executable, run as
//!   `<bench> __dns <pid> …`) dies with it, and the namespace files, mounted
//!   in a private mount namespace, vanish with that namespace (only the temp
//!   dir's plain files stay behind).

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, SamplingMode, measurement::WallTime};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::{Signal, kill};
use nix::unistd::getppid;
use rcompose_netctl::dns::{DAEMON_SUBCOMMAND, DnsDaemonArgs, serve};
use rcompose_netctl::firewall::{Firewall, FirewallInput, FwNetwork, FwPort, NftFirewall, render};
use rcompose_netctl::manager::{
    ConnectRequest, DnsLauncher, NetPaths, NetworkRequest, Networks, dns_pid,
};
use rcompose_netctl::model::{PortMapping, Protocol};
use rcompose_netctl::netlink::LinuxNetlink;
use rcompose_netctl::netns;
use rcompose_netctl::testing::{ThreadNetns, is_root};

type Net = Networks<LinuxNetlink, NftFirewall>;

const NETWORK: &str = "bench_front";
const CONTAINER: &str = "bench-web-1";

fn main() {
    if let Some(code) = run_as_dns_daemon() {
        std::process::exit(code);
    }
    if is_root() {
        private_mounts();
    }
    let mut c = Criterion::default().configure_from_args();
    bench_firewall(&mut c);
    bench_endpoint(&mut c);
    c.final_summary();
}

/// Serves DNS when started as `<bench> __dns <parent pid> <daemon args>`
/// (what the manager's launcher runs), returning the exit code; `None`
/// when this is a benchmark run.
fn run_as_dns_daemon() -> Option<i32> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != DAEMON_SUBCOMMAND {
        return None;
    }
    Some(match serve_dns(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("network bench DNS daemon: {e}");
            1
        }
    })
}

fn serve_dns(mut args: impl Iterator<Item = OsString>) -> Result<(), String> {
    let parent: i32 = args
        .next()
        .and_then(|pid| pid.to_str()?.parse().ok())
        .ok_or("missing the parent pid")?;
    // The manager starts daemons in their own process group, so a Ctrl-C of
    // the benchmark would not reach them; they go when the benchmark goes.
    set_pdeathsig(Signal::SIGTERM).map_err(|e| e.to_string())?;
    if getppid().as_raw() != parent {
        return Err("the benchmark exited before the daemon started".into());
    }
    let config = DnsDaemonArgs::from_args(args).map_err(|e| e.to_string())?;
    serve(&config).map_err(|e| e.to_string())
}

/// Moves the process, still single-threaded, into a private mount
/// namespace: the namespace files mounted later disappear with the process
/// even when it is killed before its guards run.
fn private_mounts() {
    unshare(CloneFlags::CLONE_NEWNS).expect("a private mount namespace");
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .expect("mounts made private");
}

fn skipped(what: &str) {
    eprintln!("skipping {what}: needs root (it runs in a fresh network namespace)");
}

fn bench_firewall(c: &mut Criterion) {
    let input = input_100_ports();
    let mut group = c.benchmark_group("firewall");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("render_100_ports", |b| b.iter(|| render(&input)));
    if is_root() {
        bench_apply(&mut group, &input);
    } else {
        skipped("firewall/apply_100_ports");
    }
    group.finish();
}

fn bench_apply(group: &mut BenchmarkGroup<'_, WallTime>, input: &FirewallInput) {
    slow(group, 30);
    // Entered on first use, so that a filter leaving this benchmark out
    // creates nothing; left when the function returns.
    let mut netns: Option<ThreadNetns> = None;
    let firewall = NftFirewall::new();
    group.bench_function("apply_100_ports", |b| {
        netns.get_or_insert_with(|| ThreadNetns::enter_new().expect("a fresh network namespace"));
        b.iter(|| {
            firewall
                .apply(&render(input))
                .expect("nft accepts the ruleset")
        });
    });
}

/// Settings for benchmarks of milliseconds each: a few seconds in total.
fn slow(group: &mut BenchmarkGroup<'_, WallTime>, samples: usize) {
    group
        .sample_size(samples)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sampling_mode(SamplingMode::Flat);
}

fn bench_endpoint(c: &mut Criterion) {
    if !is_root() {
        skipped("endpoint/connect_disconnect, endpoint/connect and endpoint/disconnect");
        return;
    }
    let mut group = c.benchmark_group("endpoint");
    slow(&mut group, 20);
    let mut env: Option<ConnectEnv> = None;
    group.bench_function("connect_disconnect", |b| {
        let env = env.get_or_insert_with(ConnectEnv::new);
        b.iter(|| {
            env.connect();
            env.disconnect();
        });
    });
    group.bench_function("connect", |b| {
        let env = env.get_or_insert_with(ConnectEnv::new);
        b.iter_custom(|iters| env.cycles(iters, Half::Connect));
    });
    group.bench_function("disconnect", |b| {
        let env = env.get_or_insert_with(ConnectEnv::new);
        b.iter_custom(|iters| env.cycles(iters, Half::Disconnect));
    });
    group.finish();
    drop(env);
}

/// Three networks (dual-stack, IPv4, internal) and 100 single published
/// ports over 100 containers of the first two: tcp and udp, on every host
/// address and on 127.0.0.1.
fn input_100_ports() -> FirewallInput {
    let network = |bridge: &str, subnets: &[&str], internal| FwNetwork {
        bridge: bridge.into(),
        subnets: subnets.iter().map(|s| s.parse().expect("subnet")).collect(),
        internal,
    };
    let networks = vec![
        network("rc-bench-front", &["172.30.0.0/16", "fd00:30::/64"], false),
        network("rc-bench-back", &["172.31.0.0/16"], false),
        network("rc-bench-int", &["172.29.0.0/16"], true),
    ];
    let ports = (0..100u16).map(published_port).collect();
    FirewallInput::new(networks, ports)
}

fn published_port(i: u16) -> FwPort {
    let (bridge, second_octet) = if i.is_multiple_of(2) {
        ("rc-bench-front", 30)
    } else {
        ("rc-bench-back", 31)
    };
    let udp = i % 10 == 9;
    let host = (i / 256) as u8;
    FwPort {
        bridge: bridge.into(),
        container_ip: IpAddr::V4(Ipv4Addr::new(172, second_octet, host, (i % 256) as u8 + 2)),
        mapping: PortMapping {
            host_ip: (i % 4 == 3).then_some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            host_port: 20000 + i,
            container_port: if udp { 53 } else { 8080 },
            count: 1,
            protocol: if udp { Protocol::Udp } else { Protocol::Tcp },
        },
    }
}

/// The half of a connect and disconnect cycle a benchmark times.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Half {
    Connect,
    Disconnect,
}

/// A network with its bridge and DNS daemon, and a container's namespace
/// file, in a fresh network namespace of the calling thread. Dropping it
/// removes the container and the network, stops the daemon and leaves the
/// namespace, also while a panic unwinds.
struct ConnectEnv {
    runtime: tokio::runtime::Runtime,
    net: Net,
    request: ConnectRequest,
    _dir: tempfile::TempDir,
    _netns: ThreadNetns,
}

impl ConnectEnv {
    fn new() -> ConnectEnv {
        let netns = ThreadNetns::enter_new().expect("a fresh network namespace");
        run(&["ip", "link", "set", "lo", "up"]);
        let dir = tempfile::tempdir().expect("a temp dir");
        let env = ConnectEnv {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime"),
            net: networks(dir.path()),
            request: ConnectRequest {
                container_id: CONTAINER.into(),
                container_name: CONTAINER.into(),
                network: NETWORK.into(),
                aliases: vec!["web".into()],
                ..Default::default()
            },
            _dir: dir,
            _netns: netns,
        };
        // Made once the guard exists, so a failure here is cleaned up too.
        let request = NetworkRequest {
            name: NETWORK.into(),
            ..Default::default()
        };
        env.runtime
            .block_on(env.net.ensure_network(&request))
            .expect("the network is created");
        env.net.ensure_netns(CONTAINER).expect("a namespace file");
        env
    }

    fn connect(&self) {
        self.runtime
            .block_on(self.net.connect(&self.request))
            .expect("connect");
    }

    fn disconnect(&self) {
        self.runtime
            .block_on(self.net.disconnect(CONTAINER, NETWORK))
            .expect("disconnect");
    }

    /// Runs `iters` connect and disconnect cycles, so that every connect
    /// starts from the same state, and returns the time spent in `timed`.
    fn cycles(&self, iters: u64, timed: Half) -> Duration {
        let mut spent = Duration::ZERO;
        for _ in 0..iters {
            let start = Instant::now();
            self.connect();
            if timed == Half::Connect {
                spent += start.elapsed();
            }
            let start = Instant::now();
            self.disconnect();
            if timed == Half::Disconnect {
                spent += start.elapsed();
            }
        }
        spent
    }
}

impl Drop for ConnectEnv {
    fn drop(&mut self) {
        // Best effort: what the manager could not remove is removed below.
        let _ = self.runtime.block_on(self.net.remove_container(CONTAINER));
        let _ = self.runtime.block_on(self.net.remove_network(NETWORK));
        let paths = self.net.paths();
        if let Some(pid) = dns_pid(paths, NETWORK) {
            let _ = kill(pid, Signal::SIGKILL);
        }
        let _ = netns::remove(&paths.netns(CONTAINER));
    }
}

/// The manager over the real kernel, with its state under `dir` and this
/// executable as the DNS daemon, which gets no upstream resolvers.
fn networks(dir: &Path) -> Net {
    let resolv = dir.join("host-resolv.conf");
    std::fs::write(&resolv, "").expect("an empty resolv.conf");
    let launcher = DnsLauncher {
        program: current_exe(),
        args: vec![
            DAEMON_SUBCOMMAND.into(),
            std::process::id().to_string().into(),
        ],
        host_resolv_conf: resolv,
    };
    let paths = NetPaths::new(&dir.join("state"), &dir.join("run"));
    Networks::new(paths, LinuxNetlink::new(), NftFirewall::new(), launcher)
}

fn current_exe() -> PathBuf {
    std::env::current_exe().expect("the benchmark's own path")
}

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("command runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
