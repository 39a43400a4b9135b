//! Address arithmetic shared by subnet planning and leasing: addresses as
//! integers, overlap of subnets, and the addresses of a subnet that are
//! never handed to an endpoint.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::IpFamily;

/// An address as an integer, so ranges can be walked with `+ 1`.
pub(crate) fn to_bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The inverse of [`to_bits`]; for IPv4 only the low 32 bits count, and
/// callers only pass values taken from IPv4 ranges.
pub(crate) fn from_bits(bits: u128, family: IpFamily) -> IpAddr {
    match family {
        IpFamily::V4 => IpAddr::V4(Ipv4Addr::from(bits as u32)),
        IpFamily::V6 => IpAddr::V6(Ipv6Addr::from(bits)),
    }
}

/// True when two subnets share at least one address (containment in either
/// direction); subnets of different families never do.
pub(crate) fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// A default route overlaps everything, so it never blocks a subnet.
pub(crate) fn is_default_route(net: &IpNet) -> bool {
    net.prefix_len() == 0
}

/// The first address after the network address: the default gateway.
pub(crate) fn first_host(subnet: &IpNet) -> IpAddr {
    let family = IpFamily::of_net(subnet);
    from_bits(to_bits(subnet.network()) + 1, family)
}

/// Why `addr` can never be leased in `subnet` (gateway aside), if it cannot.
pub(crate) fn reserved_role(subnet: &IpNet, addr: IpAddr) -> Option<&'static str> {
    if addr == subnet.network() {
        Some("the network address")
    } else if subnet.addr().is_ipv4() && addr == subnet.broadcast() {
        Some("the broadcast address")
    } else {
        None
    }
}

/// True when the subnet has room for a gateway and at least one endpoint
/// besides its reserved addresses (IPv4 `/30`, IPv6 `/126` at most).
pub(crate) fn has_room(subnet: &IpNet) -> bool {
    subnet.max_prefix_len() - subnet.prefix_len() >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn overlap_counts_containment_in_either_direction() {
        assert!(overlaps(&net("10.0.0.0/8"), &net("10.1.2.0/24")));
        assert!(overlaps(&net("10.1.2.0/24"), &net("10.0.0.0/8")));
        assert!(overlaps(&net("10.1.2.0/24"), &net("10.1.2.0/24")));
        assert!(!overlaps(&net("10.1.2.0/24"), &net("10.1.3.0/24")));
    }

    #[test]
    fn subnets_of_different_families_never_overlap() {
        assert!(!overlaps(&net("0.0.0.0/0"), &net("::/0")));
    }

    #[test]
    fn the_first_host_follows_the_network_address() {
        assert_eq!(first_host(&net("172.18.0.0/16")).to_string(), "172.18.0.1");
        assert_eq!(first_host(&net("fd00:1::/64")).to_string(), "fd00:1::1");
    }

    #[test]
    fn only_ipv4_has_a_broadcast_address_to_skip() {
        let v4 = net("10.0.0.0/24");
        assert!(reserved_role(&v4, "10.0.0.255".parse().unwrap()).is_some());
        let v6 = net("fd00::/120");
        assert!(reserved_role(&v6, "fd00::ff".parse().unwrap()).is_none());
        assert!(reserved_role(&v6, "fd00::".parse().unwrap()).is_some());
    }

    #[test]
    fn a_slash_thirty_has_room_and_a_slash_thirty_one_does_not() {
        assert!(has_room(&net("10.0.0.0/30")));
        assert!(!has_room(&net("10.0.0.0/31")));
        assert!(has_room(&net("fd00::/126")));
        assert!(!has_room(&net("fd00::/127")));
    }
}
