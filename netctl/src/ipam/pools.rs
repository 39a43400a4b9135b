//! Address pools and the choice of a free subnet from them.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use sha2::{Digest, Sha256};

use super::IpFamily;
use super::addr::{is_default_route, overlaps};
use super::error::IpamError;

/// A range that subnets of one prefix length are carved from, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubnetPool {
    base: IpNet,
    size: u8,
}

impl SubnetPool {
    /// A pool of `/size` subnets inside `base` (host bits of `base` are
    /// ignored); `size` must be at least `base`'s prefix length and leave
    /// room for a gateway and one endpoint (IPv4 `/30`, IPv6 `/126`).
    pub fn new(base: IpNet, size: u8) -> Result<SubnetPool, IpamError> {
        if size < base.prefix_len() || size > base.max_prefix_len() - 2 {
            return Err(IpamError::InvalidPool { base, size });
        }
        Ok(SubnetPool {
            base: base.trunc(),
            size,
        })
    }

    /// The range the subnets are carved from.
    pub fn base(&self) -> IpNet {
        self.base
    }

    /// The prefix length of every subnet of the pool.
    pub fn size(&self) -> u8 {
        self.size
    }

    /// The pool's address family.
    pub fn family(&self) -> IpFamily {
        IpFamily::of_net(&self.base)
    }

    /// Every subnet of the pool, lowest first.
    pub fn subnets(&self) -> impl Iterator<Item = IpNet> + use<> {
        // `new` checked the prefix lengths, so the error case is empty.
        self.base.subnets(self.size).into_iter().flatten()
    }
}

/// The bridge driver's default IPv4 pools: `172.17.0.0/16` to
/// `172.31.0.0/16` as one `/16` each, then `192.168.0.0/16` in `/20`s.
pub fn default_pools() -> Vec<SubnetPool> {
    let sixteens = (17..=31).map(|octet| SubnetPool {
        // 16 is a valid IPv4 prefix length, so this cannot panic.
        base: IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(172, octet, 0, 0), 16)),
        size: 16,
    });
    let twenties = SubnetPool {
        // As above: a literal, valid prefix length.
        base: IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(192, 168, 0, 0), 16)),
        size: 20,
    };
    sixteens.chain([twenties]).collect()
}

/// The IPv6 pool of a network without a configured IPv6 subnet: the `/64`s
/// of the unique-local `/48` `fdXX:XXXX:XXXX::/48`, whose 40-bit global id is
/// the start of the SHA-256 of `seed` (the network's name). The same name
/// always gives the same `/48`.
pub fn default_ipv6_pool(seed: &str) -> SubnetPool {
    let digest = Sha256::digest(seed.as_bytes());
    let mut octets = [0u8; 16];
    octets[0] = 0xfd;
    octets[1..6].copy_from_slice(&digest[..5]);
    SubnetPool {
        // 48 is a valid IPv6 prefix length, so this cannot panic.
        base: IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::from(octets), 48)),
        size: 64,
    }
}

/// The first subnet of `pools` (in order) that overlaps nothing in `taken`.
///
/// `taken` holds the destinations of the host's routes and the subnets of
/// existing networks; default routes (prefix length 0) in it are ignored,
/// since they overlap everything.
pub fn allocate_subnet(pools: &[SubnetPool], taken: &[IpNet]) -> Result<IpNet, IpamError> {
    let blocking: Vec<&IpNet> = taken.iter().filter(|n| !is_default_route(n)).collect();
    pools
        .iter()
        .flat_map(SubnetPool::subnets)
        .find(|candidate| !blocking.iter().any(|t| overlaps(candidate, t)))
        .ok_or_else(|| IpamError::NoFreeSubnet {
            pools: describe(pools),
        })
}

/// `172.17.0.0/16 in /16s, …` for error messages.
fn describe(pools: &[SubnetPool]) -> String {
    if pools.is_empty() {
        return "no pool".to_string();
    }
    let parts: Vec<String> = pools
        .iter()
        .map(|p| format!("{} in /{}s", p.base, p.size))
        .collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn default_pools_run_from_172_17_to_the_last_slash_twenty_of_192_168() {
        let all: Vec<IpNet> = default_pools()
            .iter()
            .flat_map(SubnetPool::subnets)
            .collect();
        assert_eq!(all.len(), 15 + 16);
        assert_eq!(all[0], net("172.17.0.0/16"));
        assert_eq!(all[14], net("172.31.0.0/16"));
        assert_eq!(all[15], net("192.168.0.0/20"));
        assert_eq!(all[30], net("192.168.240.0/20"));
    }

    #[test]
    fn allocation_takes_the_first_pool_subnet_when_nothing_is_taken() {
        let subnet = allocate_subnet(&default_pools(), &[]).unwrap();
        assert_eq!(subnet, net("172.17.0.0/16"));
    }

    #[test]
    fn allocation_skips_a_pool_subnet_that_overlaps_a_host_route() {
        let subnet = allocate_subnet(&default_pools(), &[net("172.17.5.0/24")]).unwrap();
        assert_eq!(subnet, net("172.18.0.0/16"));
    }

    #[test]
    fn allocation_skips_pool_subnets_inside_a_wider_host_route() {
        let subnet = allocate_subnet(&default_pools(), &[net("172.16.0.0/12")]).unwrap();
        assert_eq!(subnet, net("192.168.0.0/20"));
    }

    #[test]
    fn allocation_skips_subnets_of_existing_networks() {
        let taken = [net("172.17.0.0/16"), net("172.18.0.0/16")];
        let subnet = allocate_subnet(&default_pools(), &taken).unwrap();
        assert_eq!(subnet, net("172.19.0.0/16"));
    }

    #[test]
    fn allocation_ignores_default_routes() {
        let taken = [net("0.0.0.0/0"), net("::/0")];
        let subnet = allocate_subnet(&default_pools(), &taken).unwrap();
        assert_eq!(subnet, net("172.17.0.0/16"));
    }

    #[test]
    fn allocation_fails_naming_the_pools_when_everything_is_taken() {
        let taken = [net("172.16.0.0/12"), net("192.168.0.0/16")];
        let err = allocate_subnet(&default_pools()[14..], &taken).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to allocate a subnet: every subnet of 172.31.0.0/16 in /16s, \
             192.168.0.0/16 in /20s overlaps a host route or an existing network"
        );
    }

    #[test]
    fn the_ipv6_pool_is_a_unique_local_slash_48_fixed_by_the_seed() {
        let pool = default_ipv6_pool("shop_front");
        assert_eq!(pool, default_ipv6_pool("shop_front"));
        assert_ne!(pool.base(), default_ipv6_pool("shop_back").base());
        assert_eq!((pool.base().prefix_len(), pool.size()), (48, 64));
        assert!(net("fd00::/8").contains(&pool.base()));
    }

    #[test]
    fn ipv6_allocation_takes_the_first_free_slash_64_of_the_pool() {
        let pool = default_ipv6_pool("shop_front");
        let first = allocate_subnet(&[pool], &[]).unwrap();
        assert_eq!(first, IpNet::new(pool.base().network(), 64).unwrap());
        let second = allocate_subnet(&[pool], &[first]).unwrap();
        assert!(pool.base().contains(&second) && second != first);
    }

    #[test]
    fn a_pool_step_without_room_for_an_endpoint_is_rejected() {
        assert!(SubnetPool::new(net("10.0.0.0/16"), 31).is_err());
        assert!(SubnetPool::new(net("10.0.0.0/16"), 30).is_ok());
    }

    #[test]
    fn a_pool_step_shorter_than_its_base_is_rejected() {
        let err = SubnetPool::new(net("10.0.0.0/16"), 8).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to create an address pool from 10.0.0.0/16 in /8 steps: \
             the step must be at least /16 and at most /30"
        );
    }
}
