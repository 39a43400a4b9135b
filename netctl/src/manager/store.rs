//! Where netctl keeps its state, and reading and writing it.
//!
//! Layout (all JSON written atomically):
//!
//! ```text
//! <state>/                      e.g. /var/lib/rcompose/networks
//!   .lock                       held while any network or endpoint changes
//!   dns.json                    the DNS table every DNS daemon serves
//!   firewall.sha256             digest of the nftables table last applied
//!   <network>/network.json      NetworkRecord
//!   <network>/leases.json       address leases (see ipam)
//!   <network>/endpoints/<container-id>.json   EndpointRecord
//!   .removing-<network>/        a network's directory while it is removed
//!   .containers/<container-id>/{hosts,hostname,resolv.conf}
//!                               files bind-mounted into the container
//! <run>/                        e.g. /run/rcompose/networks
//!   netns/<container-id>        bind mount of the container's network namespace
//!   dns/<network>.pid           pid of the network's DNS daemon
//!   dns/<network>.log           its output
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rcompose_reconciler::fsutil;

use crate::model::{EndpointRecord, NetworkRecord};

/// What a network's directory is renamed to start with while it is removed.
const REMOVING_PREFIX: &str = ".removing-";

/// The two roots of netctl's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetPaths {
    /// Persistent state (records, leases, the DNS table).
    pub state: PathBuf,
    /// Runtime state (namespace mounts, daemon pids); gone after a reboot.
    pub run: PathBuf,
}

impl NetPaths {
    /// `<root>/networks` and `<run_dir>/networks`.
    pub fn new(root: &Path, run_dir: &Path) -> NetPaths {
        NetPaths {
            state: root.join("networks"),
            run: run_dir.join("networks"),
        }
    }

    /// The lock file.
    pub fn lock(&self) -> PathBuf {
        self.state.join(".lock")
    }

    /// The digest of the nftables table last applied.
    pub fn firewall_stamp(&self) -> PathBuf {
        self.state.join("firewall.sha256")
    }

    /// The DNS table file.
    pub fn dns_table(&self) -> PathBuf {
        self.state.join("dns.json")
    }

    /// A network's directory.
    pub fn network_dir(&self, name: &str) -> PathBuf {
        self.state.join(name)
    }

    /// Where a network's directory is moved while the network is removed
    /// (network names cannot start with a dot): no list of networks sees
    /// it, and what is in it goes with it.
    pub fn removing_dir(&self, name: &str) -> PathBuf {
        self.state.join(format!("{REMOVING_PREFIX}{name}"))
    }

    /// A network's record.
    pub fn network_record(&self, name: &str) -> PathBuf {
        self.network_dir(name).join("network.json")
    }

    /// A network's leases.
    pub fn leases(&self, name: &str) -> PathBuf {
        self.network_dir(name).join("leases.json")
    }

    /// An endpoint's record.
    pub fn endpoint(&self, network: &str, container_id: &str) -> PathBuf {
        self.network_dir(network)
            .join("endpoints")
            .join(format!("{container_id}.json"))
    }

    /// The directory of a container's `/etc/hosts`, `/etc/hostname` and
    /// `/etc/resolv.conf` (network names cannot start with a dot).
    pub fn container_files(&self, container_id: &str) -> PathBuf {
        self.state.join(".containers").join(container_id)
    }

    /// Where a container's network namespace is mounted.
    pub fn netns(&self, container_id: &str) -> PathBuf {
        self.run.join("netns").join(container_id)
    }

    /// The pid file of a network's DNS daemon.
    pub fn dns_pid(&self, network: &str) -> PathBuf {
        self.run.join("dns").join(format!("{network}.pid"))
    }

    /// The log of a network's DNS daemon.
    pub fn dns_log(&self, network: &str) -> PathBuf {
        self.run.join("dns").join(format!("{network}.log"))
    }

    /// Every network record, sorted by name.
    pub fn networks(&self) -> io::Result<Vec<NetworkRecord>> {
        let mut out = Vec::new();
        for dir in subdirs(&self.state)? {
            if dir
                .file_name()
                .is_some_and(|n| n.as_encoded_bytes().starts_with(b"."))
            {
                continue;
            }
            if let Some(record) = fsutil::read_json::<NetworkRecord>(&dir.join("network.json"))? {
                out.push(record);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The names of the networks whose directory is moved aside: being
    /// removed, or left so by a crash in the middle of a removal.
    pub fn removing(&self) -> io::Result<Vec<String>> {
        let mut out: Vec<String> = subdirs(&self.state)?
            .iter()
            .filter_map(|dir| {
                dir.file_name()?
                    .to_str()?
                    .strip_prefix(REMOVING_PREFIX)
                    .map(String::from)
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// One network's record.
    pub fn network(&self, name: &str) -> io::Result<Option<NetworkRecord>> {
        fsutil::read_json(&self.network_record(name))
    }

    /// The endpoints of one network, sorted by container name.
    pub fn endpoints_of(&self, network: &str) -> io::Result<Vec<EndpointRecord>> {
        let dir = self.network_dir(network).join("endpoints");
        let mut out = Vec::new();
        for entry in read_dir_or_empty(&dir)? {
            if let Some(record) = fsutil::read_json::<EndpointRecord>(&entry)? {
                out.push(record);
            }
        }
        out.sort_by(|a, b| a.container_name.cmp(&b.container_name));
        Ok(out)
    }

    /// One container's endpoints on every network: one file read per
    /// network where it has one, not a read of every endpoint.
    pub fn endpoints_of_container(&self, container_id: &str) -> io::Result<Vec<EndpointRecord>> {
        let mut out = Vec::new();
        for dir in subdirs(&self.state)? {
            let path = dir.join("endpoints").join(format!("{container_id}.json"));
            let Some(record) = fsutil::read_json::<EndpointRecord>(&path)? else {
                continue;
            };
            // Only networks with a record count, as in `all_endpoints`.
            if record.container_id == container_id && dir.join("network.json").exists() {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// Every endpoint of every network.
    pub fn all_endpoints(&self) -> io::Result<Vec<EndpointRecord>> {
        let mut out = Vec::new();
        for net in self.networks()? {
            out.extend(self.endpoints_of(&net.name)?);
        }
        Ok(out)
    }
}

fn read_dir_or_empty(dir: &Path) -> io::Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(entries) => {
            let mut out = Vec::new();
            for entry in entries {
                let path = entry?.path();
                if path.extension().is_some_and(|e| e == "json") {
                    out.push(path);
                }
            }
            Ok(out)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn subdirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(entries) => {
            let mut out = Vec::new();
            for entry in entries {
                let entry = entry?;
                if entry.file_type()?.is_dir() {
                    out.push(entry.path());
                }
            }
            Ok(out)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}
