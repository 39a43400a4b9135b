//! Starting and stopping the per-network DNS daemons (`rcompose __dns`).
//!
//! A daemon listens on its network's gateway addresses, port 53, and serves
//! the shared DNS table file. It runs detached in its own process group, so
//! it outlives the command that started it; its pid file names it. Before a
//! pid is signalled, its command line is checked, so a reused pid is never
//! killed.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use rcompose_reconciler::wait::{Backoff, ProcessExit};

use super::store::NetPaths;
use crate::dns::{DAEMON_SUBCOMMAND, DnsDaemonArgs, ResolvConf};
use crate::model::NetworkRecord;

/// How to start a DNS daemon: a program and the arguments that precede the
/// daemon's own (`rcompose __dns`), plus where the host's resolvers are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsLauncher {
    /// The executable.
    pub program: PathBuf,
    /// Arguments before the daemon's own.
    pub args: Vec<OsString>,
    /// The host's resolv.conf, read for upstream servers.
    pub host_resolv_conf: PathBuf,
}

impl DnsLauncher {
    /// `<this executable> __dns`, with the host's `/etc/resolv.conf`.
    pub fn current_exe() -> io::Result<DnsLauncher> {
        Ok(DnsLauncher {
            program: std::env::current_exe()?,
            args: vec![DAEMON_SUBCOMMAND.into()],
            host_resolv_conf: "/etc/resolv.conf".into(),
        })
    }

    /// Upstream servers: the host's nameservers (none for internal networks).
    fn upstreams(&self, network: &NetworkRecord) -> Vec<SocketAddr> {
        if network.internal {
            return Vec::new();
        }
        let text = fs::read_to_string(&self.host_resolv_conf).unwrap_or_default();
        ResolvConf::parse(&text)
            .nameservers
            .into_iter()
            .map(|ip| SocketAddr::new(ip, 53))
            .collect()
    }
}

/// Failures of daemon management.
#[derive(Debug, thiserror::Error)]
pub enum DnsdError {
    /// The daemon could not be started.
    #[error("failed to start the DNS server of network {network}")]
    Spawn {
        /// Network name.
        network: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The daemon exited or never listened.
    #[error("the DNS server of network {network} did not start: {log}")]
    NotListening {
        /// Network name.
        network: String,
        /// The end of its log.
        log: String,
    },
}

/// Starting and stopping the DNS server of a network: the seam between the
/// network manager and the daemon processes.
pub trait DnsServers {
    /// Starts the network's DNS server unless it runs.
    fn ensure(&self, paths: &NetPaths, network: &NetworkRecord) -> Result<(), DnsdError>;
    /// Stops the network's DNS server; one that is gone is success.
    fn stop(&self, paths: &NetPaths, network: &str);
}

impl DnsServers for DnsLauncher {
    fn ensure(&self, paths: &NetPaths, network: &NetworkRecord) -> Result<(), DnsdError> {
        ensure(paths, self, network)
    }

    fn stop(&self, paths: &NetPaths, network: &str) {
        stop(paths, network)
    }
}

/// A fake of the DNS servers for tests without root: records which
/// networks have a server.
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Default)]
pub struct FakeDns {
    /// Network name → the id of the network it was started for.
    running: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
}

#[cfg(any(test, feature = "testing"))]
impl FakeDns {
    /// Networks whose server runs.
    pub fn running(&self) -> Vec<String> {
        self.running
            .lock()
            .expect("fake state")
            .keys()
            .cloned()
            .collect()
    }

    /// The id of the network the server of `network` was started for.
    pub fn serving(&self, network: &str) -> Option<String> {
        self.running
            .lock()
            .expect("fake state")
            .get(network)
            .cloned()
    }
}

#[cfg(any(test, feature = "testing"))]
impl DnsServers for FakeDns {
    fn ensure(&self, _: &NetPaths, network: &NetworkRecord) -> Result<(), DnsdError> {
        // As the real one: a server that runs is kept, whatever it serves.
        self.running
            .lock()
            .expect("fake state")
            .entry(network.name.clone())
            .or_insert_with(|| network.id.clone());
        Ok(())
    }

    fn stop(&self, _: &NetPaths, network: &str) {
        self.running.lock().expect("fake state").remove(network);
    }
}

/// Starts the network's DNS daemon unless it is already running.
fn ensure(
    paths: &NetPaths,
    launcher: &DnsLauncher,
    network: &NetworkRecord,
) -> Result<(), DnsdError> {
    if running_pid(paths, &network.name).is_some() {
        return Ok(());
    }
    let spawn_err = |source| DnsdError::Spawn {
        network: network.name.clone(),
        source,
    };
    let args = DnsDaemonArgs {
        listen: network
            .subnets
            .iter()
            .map(|s| SocketAddr::new(s.gateway, 53))
            .collect(),
        table: paths.dns_table(),
        upstreams: launcher.upstreams(network),
    };
    let log_path = paths.dns_log(&network.name);
    fs::create_dir_all(log_path.parent().unwrap_or(Path::new("/"))).map_err(spawn_err)?;
    let log = File::create(&log_path).map_err(spawn_err)?;
    let mut child = Command::new(&launcher.program)
        .args(&launcher.args)
        .args(args.to_args())
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(spawn_err)?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(spawn_err)?;
    let pid = child.id();
    // Reap it if it dies while we live; it is reparented when we exit.
    std::thread::spawn(move || child.wait());
    fs::write(paths.dns_pid(&network.name), pid.to_string()).map_err(spawn_err)?;
    wait_listening(pid, &args.listen, Duration::from_secs(5)).map_err(|_| DnsdError::NotListening {
        network: network.name.clone(),
        log: tail(&log_path),
    })
}

/// Stops the network's DNS daemon; a daemon that is gone is success.
fn stop(paths: &NetPaths, network: &str) {
    if let Some(pid) = running_pid(paths, network) {
        let mut exit = ProcessExit::watch(pid.as_raw());
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut backoff = Backoff::default();
        while alive(pid) && Instant::now() < deadline {
            exit.wait(&mut backoff);
        }
        if alive(pid) {
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
    let _ = fs::remove_file(paths.dns_pid(network));
}

/// The daemon's pid when the pid file names a live DNS daemon of ours.
pub fn running_pid(paths: &NetPaths, network: &str) -> Option<Pid> {
    let text = fs::read_to_string(paths.dns_pid(network)).ok()?;
    let pid = Pid::from_raw(text.trim().parse().ok()?);
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let table = paths.dns_table();
    let ours = cmdline
        .split(|b| *b == 0)
        .any(|arg| arg == table.as_os_str().as_encoded_bytes());
    (ours && alive(pid)).then_some(pid)
}

fn alive(pid: Pid) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Field 3 is the state; a zombie has exited.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Waits until the daemon answers a query on every listen address (any
/// answer will do; it is refused, since the prober is not a container).
fn wait_listening(pid: u32, listen: &[SocketAddr], timeout: Duration) -> Result<(), ()> {
    let deadline = Instant::now() + timeout;
    let pid = Pid::from_raw(pid as i32);
    let mut pending: Vec<SocketAddr> = listen.to_vec();
    while !pending.is_empty() {
        if !alive(pid) || Instant::now() > deadline {
            return Err(());
        }
        pending.retain(|addr| !answers(*addr));
    }
    Ok(())
}

/// Sends a query for the root name and waits briefly for any reply.
fn answers(addr: SocketAddr) -> bool {
    // id 0x7263, recursion desired, one question: ". IN A".
    const QUERY: [u8; 17] = [0x72, 0x63, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1];
    let local: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .expect("literal");
    let Ok(socket) = UdpSocket::bind(local) else {
        return false;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_millis(20)));
    if socket.send_to(&QUERY, addr).is_err() {
        std::thread::sleep(Duration::from_millis(20));
        return false;
    }
    let mut buf = [0u8; 512];
    matches!(socket.recv_from(&mut buf), Ok((n, from)) if n >= 2 && from == addr && buf[..2] == QUERY[..2])
}

fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    let joined = lines.into_iter().rev().collect::<Vec<_>>().join("; ");
    if joined.is_empty() {
        "no output".into()
    } else {
        joined
    }
}

/// The address a container's resolv.conf names: its first network's IPv4
/// gateway (or IPv6 when the network has no IPv4).
pub fn nameserver_of(network: &NetworkRecord) -> Option<IpAddr> {
    let v4 = network.subnets.iter().find(|s| s.gateway.is_ipv4());
    v4.or(network.subnets.first()).map(|s| s.gateway)
}
