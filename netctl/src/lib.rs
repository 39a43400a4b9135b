//! Bridge networking for rcompose: one Linux bridge per stack network, IPAM
//! with persisted leases, veth endpoints in container network namespaces,
//! one nftables table for NAT, isolation and published ports, and an
//! embedded DNS server that answers container names only to containers on
//! the same network.
//!
//! Pure descriptions (subnet choice, the ruleset, the DNS table, the files
//! a container sees) are built first and applied through thin kernel-facing
//! layers (`netlink`, `firewall::apply`, the DNS server).

pub mod dns;
pub mod firewall;
pub mod ipam;
pub mod manager;
pub mod model;
pub mod names;
pub mod netlink;
pub mod netns;
#[cfg(feature = "testing")]
pub mod testing;
