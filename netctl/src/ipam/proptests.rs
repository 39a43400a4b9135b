//! Property tests across the module: subnet allocation never overlaps,
//! leases never collide or stray, and lease files round-trip.

use std::net::IpAddr;

use ipnet::IpNet;
use proptest::prelude::*;

use super::addr::{from_bits, overlaps, reserved_role, to_bits};
use super::{IpFamily, Leases, SubnetPool, allocate_subnet, default_ipv6_pool, default_pools};
use crate::model::SubnetRecord;

/// A route of `family` with a random prefix of at least `min_len` inside
/// `near` (so routes often hit the pools).
fn route_near(near: IpNet, min_len: u8) -> impl Strategy<Value = IpNet> {
    let max = near.max_prefix_len();
    (any::<u128>(), min_len..=max).prop_map(move |(bits, len)| net_in(near, bits, len))
}

/// The `/len` that contains `near`'s network plus `bits` of host part.
fn net_in(near: IpNet, bits: u128, len: u8) -> IpNet {
    let family = IpFamily::of_net(&near);
    let host = near.max_prefix_len() - near.prefix_len();
    let host_mask = if host == 0 {
        0
    } else {
        u128::MAX >> (128 - u32::from(host))
    };
    let addr = from_bits(to_bits(near.network()) | (bits & host_mask), family);
    IpNet::new(addr, len).map(|n| n.trunc()).unwrap()
}

fn v4_routes() -> impl Strategy<Value = Vec<IpNet>> {
    let near = prop_oneof![
        Just("0.0.0.0/0".parse::<IpNet>().unwrap()),
        Just("172.16.0.0/12".parse().unwrap()),
        Just("192.168.0.0/16".parse().unwrap()),
    ];
    proptest::collection::vec(near.prop_flat_map(|n| route_near(n, 8)), 0..12)
}

fn v6_routes(pool: SubnetPool) -> impl Strategy<Value = Vec<IpNet>> {
    proptest::collection::vec(route_near(pool.base(), 40), 0..12)
}

/// Allocates `count` subnets one after another and checks each against
/// what was taken; a failure must mean every pool subnet is blocked.
fn check_sequential_allocation(pools: &[SubnetPool], routes: &[IpNet], count: usize) {
    let mut taken = routes.to_vec();
    for _ in 0..count {
        let Ok(subnet) = allocate_subnet(pools, &taken) else {
            let mut all = pools.iter().flat_map(SubnetPool::subnets);
            let blocked = |s: IpNet| taken.iter().any(|t| t.prefix_len() > 0 && overlaps(&s, t));
            assert!(
                all.all(blocked),
                "allocation failed with a free subnet left"
            );
            return;
        };
        for t in taken.iter().filter(|t| t.prefix_len() > 0) {
            assert!(!overlaps(&subnet, t), "{subnet} overlaps taken {t}");
        }
        taken.push(subnet);
    }
}

proptest! {
    #[test]
    fn sequential_ipv4_subnets_never_overlap_each_other_or_host_routes(
        routes in v4_routes(),
        count in 1usize..40,
    ) {
        check_sequential_allocation(&default_pools(), &routes, count);
    }

    #[test]
    fn sequential_ipv6_subnets_never_overlap_each_other_or_host_routes(
        (pool, routes) in "[a-z_]{1,12}"
            .prop_map(|seed| default_ipv6_pool(&seed))
            .prop_flat_map(|pool| (Just(pool), v6_routes(pool))),
        count in 1usize..20,
    ) {
        check_sequential_allocation(&[pool], &routes, count);
    }
}

/// A valid subnet record of `family` with a prefix in `lens`: random
/// position, optional ip_range, gateway anywhere but the reserved ends.
fn subnet_record(family: IpFamily) -> impl Strategy<Value = SubnetRecord> {
    let (space, lens) = match family {
        IpFamily::V4 => ("10.0.0.0/8", 24u8..=30),
        IpFamily::V6 => ("fd00::/16", 120u8..=126),
    };
    let space: IpNet = space.parse().unwrap();
    let range = proptest::option::of((any::<u128>(), 0u8..=8));
    (any::<u128>(), lens, range, any::<u128>()).prop_map(move |(bits, len, range, gw)| {
        let subnet = net_in(space, bits, len);
        let size = 1u128 << (subnet.max_prefix_len() - len);
        let gateway = from_bits(to_bits(subnet.network()) + 1 + gw % (size - 2), family);
        let ip_range = range
            .map(|(bits, extra)| net_in(subnet, bits, (len + extra).min(subnet.max_prefix_len())));
        SubnetRecord {
            subnet,
            gateway,
            ip_range,
        }
    })
}

#[derive(Debug, Clone)]
enum Op {
    Allocate {
        owner: u8,
        requested: Option<u128>,
        family: IpFamily,
    },
    Release {
        owner: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let family = prop_oneof![Just(IpFamily::V4), Just(IpFamily::V6)];
    prop_oneof![
        3 => (0u8..12, proptest::option::of(any::<u128>()), family).prop_map(
            |(owner, requested, family)| Op::Allocate { owner, requested, family }
        ),
        1 => (0u8..12).prop_map(|owner| Op::Release { owner }),
    ]
}

/// A requested address: inside the subnet most of the time, sometimes just
/// past its end.
fn requested_address(record: &SubnetRecord, pick: u128) -> IpAddr {
    let subnet = record.subnet;
    let size = 1u128 << (subnet.max_prefix_len() - subnet.prefix_len());
    let offset = pick % (size + size / 4);
    from_bits(
        to_bits(subnet.network()) + offset,
        IpFamily::of_net(&subnet),
    )
}

fn never_leasable(record: &SubnetRecord, address: IpAddr) -> bool {
    address == record.gateway || reserved_role(&record.subnet, address).is_some()
}

/// The lowest address of the dynamic range that is neither reserved nor
/// leased, by brute force.
fn expected_dynamic(leases: &Leases, record: &SubnetRecord) -> Option<IpAddr> {
    let range = record.ip_range.unwrap_or(record.subnet);
    let family = IpFamily::of_net(&range);
    (to_bits(range.network())..=to_bits(range.broadcast()))
        .map(|bits| from_bits(bits, family))
        .find(|a| !never_leasable(record, *a) && leases.owner_of(*a).is_none())
}

fn apply_allocate(leases: &mut Leases, owner: &str, requested: Option<u128>, family: IpFamily) {
    let before = leases.clone();
    let record = before.subnet(family).unwrap().clone();
    let held = before
        .addresses_of(owner)
        .into_iter()
        .find(|a| IpFamily::of_addr(*a) == family);
    let requested = requested.map(|pick| requested_address(&record, pick));
    let Ok(address) = leases.allocate(owner, requested, family) else {
        assert_eq!(*leases, before, "a failed allocation changed the leases");
        return;
    };
    assert!(record.subnet.contains(&address) && !never_leasable(&record, address));
    assert!(before.owner_of(address).is_none_or(|o| o == owner));
    match (held, requested) {
        (Some(held), _) => assert_eq!(address, held),
        (None, Some(requested)) => assert_eq!(address, requested),
        (None, None) => assert_eq!(Some(address), expected_dynamic(&before, &record)),
    }
}

fn check_invariants(leases: &Leases) {
    for (address, owner) in leases.iter() {
        let record = leases.subnet(IpFamily::of_addr(address)).unwrap();
        assert!(record.subnet.contains(&address) && !never_leasable(record, address));
        let same_family = leases
            .addresses_of(owner)
            .into_iter()
            .filter(|a| IpFamily::of_addr(*a) == IpFamily::of_addr(address));
        assert_eq!(
            same_family.count(),
            1,
            "{owner} holds two addresses of a family"
        );
    }
}

fn run_ops(leases: &mut Leases, ops: &[Op]) {
    for op in ops {
        match op {
            Op::Allocate {
                owner,
                requested,
                family,
            } => {
                apply_allocate(leases, &format!("ep{owner}"), *requested, *family);
            }
            Op::Release { owner } => {
                let owner = format!("ep{owner}");
                leases.release(&owner);
                assert!(leases.addresses_of(&owner).is_empty());
            }
        }
        check_invariants(leases);
    }
}

proptest! {
    #[test]
    fn leases_never_collide_and_never_stray(
        v4 in subnet_record(IpFamily::V4),
        v6 in subnet_record(IpFamily::V6),
        ops in proptest::collection::vec(op(), 0..80),
    ) {
        let mut leases = Leases::new(vec![v4, v6]);
        run_ops(&mut leases, &ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_saved_lease_file_loads_back_unchanged(
        v4 in subnet_record(IpFamily::V4),
        v6 in subnet_record(IpFamily::V6),
        owners in proptest::collection::vec("\\PC{1,16}", 0..10),
    ) {
        let mut leases = Leases::new(vec![v4, v6]);
        for owner in &owners {
            let _ = leases.allocate(owner, None, IpFamily::V4);
            let _ = leases.allocate(owner, None, IpFamily::V6);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leases.json");
        leases.save(&path).unwrap();
        prop_assert_eq!(Leases::load(&path).unwrap(), Some(leases));
    }
}
