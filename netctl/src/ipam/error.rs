//! The one error type of IP address management.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

use super::IpFamily;

/// Why a subnet or an address could not be planned, leased or stored.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// A pool whose step is not a valid prefix length inside its base.
    #[error(
        "failed to create an address pool from {base} in /{size} steps: the step must be at least /{} and at most /{}",
        .base.prefix_len(),
        .base.max_prefix_len() - 2
    )]
    InvalidPool {
        /// The pool's range.
        base: IpNet,
        /// The requested subnet prefix length.
        size: u8,
    },
    /// No pool of the wanted family was given.
    #[error("failed to allocate an {family} subnet: no {family} address pool is configured")]
    NoPool {
        /// The wanted family.
        family: IpFamily,
    },
    /// Every subnet of every pool overlaps something taken.
    #[error(
        "failed to allocate a subnet: every subnet of {pools} overlaps a host route or an existing network"
    )]
    NoFreeSubnet {
        /// The pools searched, comma-separated.
        pools: String,
    },
    /// `ip_range` or `gateway` without `subnet`.
    #[error("failed to check ipam config: ip_range or gateway is given without a subnet")]
    MissingSubnet,
    /// A subnet or ip_range that is not in CIDR form.
    #[error("failed to read ipam {field} {value:?}: not an address in CIDR form")]
    InvalidCidr {
        /// `subnet` or `ip_range`.
        field: &'static str,
        /// The text from the stack file.
        value: String,
        /// Why it did not parse.
        #[source]
        source: ipnet::AddrParseError,
    },
    /// A subnet or ip_range with host bits set.
    #[error("failed to read ipam {field} {value:?}: it should be {canonical}")]
    NotCanonical {
        /// `subnet` or `ip_range`.
        field: &'static str,
        /// The text from the stack file.
        value: String,
        /// The same prefix with the host bits cleared.
        canonical: IpNet,
    },
    /// A gateway that is not an address.
    #[error("failed to read ipam gateway {value:?}: not an IP address")]
    InvalidGateway {
        /// The text from the stack file.
        value: String,
        /// Why it did not parse.
        #[source]
        source: std::net::AddrParseError,
    },
    /// An ip_range or gateway of the other family than the subnet.
    #[error(
        "failed to check ipam {field} {value} of subnet {subnet}: not in the subnet's address family"
    )]
    FieldFamilyMismatch {
        /// `ip_range` or `gateway`.
        field: &'static str,
        /// The value as given.
        value: String,
        /// The configured subnet.
        subnet: IpNet,
    },
    /// A subnet too small for a gateway plus one endpoint.
    #[error("failed to check ipam subnet {subnet}: too small for a gateway and one endpoint")]
    SubnetTooSmall {
        /// The configured subnet.
        subnet: IpNet,
    },
    /// An ip_range not inside its subnet.
    #[error("failed to check ipam ip_range {ip_range}: not inside subnet {subnet}")]
    IpRangeOutsideSubnet {
        /// The configured ip_range.
        ip_range: IpNet,
        /// The configured subnet.
        subnet: IpNet,
    },
    /// A gateway not inside its subnet.
    #[error("failed to check ipam gateway {gateway} of subnet {subnet}: outside the subnet")]
    GatewayOutsideSubnet {
        /// The configured gateway.
        gateway: IpAddr,
        /// The configured subnet.
        subnet: IpNet,
    },
    /// A gateway on the network or broadcast address.
    #[error("failed to check ipam gateway {gateway} of subnet {subnet}: it is {role}")]
    GatewayReserved {
        /// The configured gateway.
        gateway: IpAddr,
        /// The configured subnet.
        subnet: IpNet,
        /// `the network address` or `the broadcast address`.
        role: &'static str,
    },
    /// A configured subnet of the other family than the one being planned.
    #[error("failed to plan an {expected} subnet: configured subnet {subnet} is not {expected}")]
    WrongFamily {
        /// The configured subnet.
        subnet: IpNet,
        /// The family being planned.
        expected: IpFamily,
    },
    /// A configured subnet that overlaps another network's.
    #[error("failed to plan subnet {subnet}: it overlaps {other} of network {network}")]
    SubnetOverlapsNetwork {
        /// The configured subnet.
        subnet: IpNet,
        /// The other network's name.
        network: String,
        /// The other network's subnet.
        other: IpNet,
    },
    /// A configured subnet that overlaps a host route.
    #[error("failed to plan subnet {subnet}: it overlaps the host route to {route}")]
    SubnetOverlapsRoute {
        /// The configured subnet.
        subnet: IpNet,
        /// The route's destination.
        route: IpNet,
    },
    /// Two configured subnets of one family on one network.
    #[error(
        "failed to plan subnets: {first} and {second} are both {family}; a bridge network has one subnet per family"
    )]
    DuplicateFamily {
        /// The family configured twice.
        family: IpFamily,
        /// The first subnet of that family.
        first: IpNet,
        /// The second one.
        second: IpNet,
    },
    /// An IPv6 subnet on a network without `enable_ipv6`.
    #[error(
        "failed to plan subnets: IPv6 subnet {subnet} is configured but enable_ipv6 is not set"
    )]
    Ipv6NotEnabled {
        /// The configured subnet.
        subnet: IpNet,
    },
    /// An address wanted in a family the network has no subnet of.
    #[error(
        "failed to allocate an {family} address for {owner}: the network has no {family} subnet"
    )]
    NoSubnetForFamily {
        /// The endpoint asking.
        owner: String,
        /// The wanted family.
        family: IpFamily,
    },
    /// A requested address of the other family than asked for.
    #[error("failed to allocate address {address} for {owner}: not an {family} address")]
    AddressFamilyMismatch {
        /// The endpoint asking.
        owner: String,
        /// The requested address.
        address: IpAddr,
        /// The family asked for.
        family: IpFamily,
    },
    /// A requested address outside the network's subnet.
    #[error("failed to allocate address {address} for {owner}: not inside subnet {subnet}")]
    AddressOutsideSubnet {
        /// The endpoint asking.
        owner: String,
        /// The requested address.
        address: IpAddr,
        /// The network's subnet.
        subnet: IpNet,
    },
    /// A requested address that is never leased.
    #[error("failed to allocate address {address} for {owner}: it is {role} of subnet {subnet}")]
    AddressReserved {
        /// The endpoint asking.
        owner: String,
        /// The requested address.
        address: IpAddr,
        /// The network's subnet.
        subnet: IpNet,
        /// `the gateway`, `the network address` or `the broadcast address`.
        role: &'static str,
    },
    /// A requested address leased to someone else.
    #[error("failed to allocate address {address} for {owner}: it is leased to {holder}")]
    AddressInUse {
        /// The endpoint asking.
        owner: String,
        /// The requested address.
        address: IpAddr,
        /// The endpoint holding it.
        holder: String,
    },
    /// A requested address for an owner that already holds another one.
    #[error("failed to allocate address {requested} for {owner}: it already holds {held}")]
    OwnerHoldsOther {
        /// The endpoint asking.
        owner: String,
        /// The requested address.
        requested: IpAddr,
        /// The address it holds in that family.
        held: IpAddr,
    },
    /// No free address left.
    #[error(
        "failed to allocate an address for {owner}: no free address left in {range} (subnet {subnet})"
    )]
    Exhausted {
        /// The endpoint asking.
        owner: String,
        /// Where dynamic addresses come from (ip_range or the subnet).
        range: IpNet,
        /// The network's subnet.
        subnet: IpNet,
    },
    /// The lease file could not be read or parsed.
    #[error("failed to read lease file {}", .path.display())]
    LoadLeases {
        /// The lease file.
        path: PathBuf,
        /// The I/O or JSON error.
        #[source]
        source: io::Error,
    },
    /// The lease file could not be written.
    #[error("failed to write lease file {}", .path.display())]
    SaveLeases {
        /// The lease file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The lease lock could not be taken.
    #[error("failed to lock lease file {}", .path.display())]
    LockLeases {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A lease file to update that was never created.
    #[error("failed to update lease file {}: it does not exist", .path.display())]
    MissingLeaseFile {
        /// The lease file.
        path: PathBuf,
    },
    /// A `mac_address` that is not a unicast 6-byte address.
    #[error("failed to read mac_address {value:?}: {reason}")]
    InvalidMac {
        /// The text from the stack file.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}
