//! IP address management for bridge networks: which subnet a network gets,
//! which address each endpoint gets inside it, and the MAC address that goes
//! with it.
//!
//! Subnets follow the bridge driver's defaults: `172.17.0.0/16` to
//! `172.31.0.0/16`, then `192.168.0.0/16` in `/20` steps; IPv6 networks
//! without a configured subnet get the first free `/64` of a unique-local
//! `/48` derived from the network's name. A chosen subnet never overlaps a
//! host route (default routes aside) or another network's subnet.
//!
//! Addresses are leased per network. Invariants of a [`Leases`] set: an
//! address has at most one owner (an endpoint id); an owner holds at most one
//! address per family; no lease is ever the subnet's network address, its
//! IPv4 broadcast address or the gateway.
//!
//! # On disk
//!
//! One JSON file per network (where it lives is the network store's choice),
//! written atomically:
//!
//! ```json
//! {
//!   "subnets": [
//!     { "subnet": "172.18.0.0/16", "gateway": "172.18.0.1" },
//!     { "subnet": "fd12:3456:789a::/64", "gateway": "fd12:3456:789a::1" }
//!   ],
//!   "leases": {
//!     "172.18.0.2": "<endpoint id>",
//!     "fd12:3456:789a::2": "<endpoint id>"
//!   }
//! }
//! ```
//!
//! `subnets` holds [`SubnetRecord`](crate::model::SubnetRecord)s (with
//! `ip_range` when one was configured); `leases` maps each leased address to
//! its owner, sorted by address. Next to it, `<file>.lock` is the flock that
//! [`with_leases`] holds around load, change and save, so two processes never
//! hand out the same address. The lock file is empty and never removed while
//! the network exists. A change that only frees addresses
//! ([`free_leases`]) is saved without waiting for the disk; the network
//! manager frees again, before each lease, what a crash brought back.

mod addr;
mod error;
mod leases;
mod mac;
mod pools;
mod request;

#[cfg(test)]
mod proptests;

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub use error::IpamError;
pub use leases::{Leases, free_leases, lock_path, with_leases};
pub use mac::MacAddress;
pub use pools::{SubnetPool, allocate_subnet, default_ipv6_pool, default_pools};
pub use request::{IpamRequest, Occupied, plan_network_subnets, plan_subnet};

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpFamily {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl IpFamily {
    /// The family of an address.
    pub fn of_addr(addr: IpAddr) -> IpFamily {
        match addr {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        }
    }

    /// The family of a subnet.
    pub fn of_net(net: &IpNet) -> IpFamily {
        IpFamily::of_addr(net.addr())
    }
}

impl fmt::Display for IpFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IpFamily::V4 => "IPv4",
            IpFamily::V6 => "IPv6",
        })
    }
}
