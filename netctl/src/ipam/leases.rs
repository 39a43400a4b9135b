//! Address leases of one network, and the lock-protected file they live in
//! (layout in the module documentation of `ipam`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcompose_reconciler::fsutil;
use serde::{Deserialize, Serialize};

use super::IpFamily;
use super::addr::{from_bits, reserved_role, to_bits};
use super::error::IpamError;
use crate::model::SubnetRecord;

/// The addresses leased on one network, by owner (an endpoint id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leases {
    subnets: Vec<SubnetRecord>,
    #[serde(default)]
    leases: BTreeMap<IpAddr, String>,
}

impl Leases {
    /// An empty lease set over a network's subnets (one per family).
    pub fn new(subnets: Vec<SubnetRecord>) -> Leases {
        Leases {
            subnets,
            leases: BTreeMap::new(),
        }
    }

    /// The network's subnets.
    pub fn subnets(&self) -> &[SubnetRecord] {
        &self.subnets
    }

    /// The network's subnet of `family`, if it has one.
    pub fn subnet(&self, family: IpFamily) -> Option<&SubnetRecord> {
        self.subnets
            .iter()
            .find(|r| IpFamily::of_net(&r.subnet) == family)
    }

    /// Who holds `address`, if anyone.
    pub fn owner_of(&self, address: IpAddr) -> Option<&str> {
        self.leases.get(&address).map(String::as_str)
    }

    /// The addresses `owner` holds, lowest first.
    pub fn addresses_of(&self, owner: &str) -> Vec<IpAddr> {
        let held = self.leases.iter().filter(|(_, o)| *o == owner);
        held.map(|(address, _)| *address).collect()
    }

    /// Every lease as (address, owner), lowest address first.
    pub fn iter(&self) -> impl Iterator<Item = (IpAddr, &str)> {
        self.leases.iter().map(|(a, o)| (*a, o.as_str()))
    }

    /// Leases an address of `family` to `owner`: `requested` when given (it
    /// must lie in the subnet, which may be outside the ip_range, and be
    /// neither reserved nor leased), else the lowest free address of the
    /// ip_range (or subnet). An owner that already holds an address of
    /// `family` gets that address back.
    pub fn allocate(
        &mut self,
        owner: &str,
        requested: Option<IpAddr>,
        family: IpFamily,
    ) -> Result<IpAddr, IpamError> {
        let record = self.subnet(family).cloned().ok_or_else(|| {
            let owner = owner.to_string();
            IpamError::NoSubnetForFamily { owner, family }
        })?;
        if let Some(held) = self.held(owner, family) {
            return keep_held(owner, held, requested);
        }
        let address = match requested {
            Some(address) => self.check_requested(owner, address, &record)?,
            None => self.lowest_free(owner, &record)?,
        };
        self.leases.insert(address, owner.to_string());
        Ok(address)
    }

    /// Frees every address of `owner` and returns them; nothing held is
    /// not an error.
    pub fn release(&mut self, owner: &str) -> Vec<IpAddr> {
        let freed = self.addresses_of(owner);
        self.leases.retain(|_, o| o != owner);
        freed
    }

    /// Frees every lease whose owner `keep` refuses; returns the freed
    /// addresses.
    pub fn retain_owners(&mut self, keep: impl Fn(&str) -> bool) -> Vec<IpAddr> {
        let freed: Vec<IpAddr> = self
            .iter()
            .filter(|(_, owner)| !keep(owner))
            .map(|(address, _)| address)
            .collect();
        self.leases.retain(|address, _| !freed.contains(address));
        freed
    }

    fn held(&self, owner: &str, family: IpFamily) -> Option<IpAddr> {
        let mut held = self.addresses_of(owner).into_iter();
        held.find(|a| IpFamily::of_addr(*a) == family)
    }

    fn check_requested(
        &self,
        owner: &str,
        address: IpAddr,
        record: &SubnetRecord,
    ) -> Result<IpAddr, IpamError> {
        let owner = owner.to_string();
        let subnet = record.subnet.trunc();
        if IpFamily::of_addr(address) != IpFamily::of_net(&subnet) {
            let family = IpFamily::of_net(&subnet);
            return Err(IpamError::AddressFamilyMismatch {
                owner,
                address,
                family,
            });
        }
        if !subnet.contains(&address) {
            return Err(IpamError::AddressOutsideSubnet {
                owner,
                address,
                subnet,
            });
        }
        if let Some(role) = reserved(record, address) {
            return Err(IpamError::AddressReserved {
                owner,
                address,
                subnet,
                role,
            });
        }
        match self.leases.get(&address) {
            Some(holder) => {
                let holder = holder.clone();
                Err(IpamError::AddressInUse {
                    owner,
                    address,
                    holder,
                })
            }
            None => Ok(address),
        }
    }

    /// Walks the range upwards; it stops after at most as many steps as
    /// there are leases and reserved addresses, so large IPv6 ranges are
    /// cheap.
    fn lowest_free(&self, owner: &str, record: &SubnetRecord) -> Result<IpAddr, IpamError> {
        let subnet = record.subnet.trunc();
        // Planning keeps ip_range inside the subnet; a hand-edited file that
        // breaks this falls back to the subnet rather than leasing outside it.
        let range = record
            .ip_range
            .map(|r| r.trunc())
            .filter(|r| subnet.contains(r));
        let range = range.unwrap_or(subnet);
        let family = IpFamily::of_net(&subnet);
        let (first, last) = (to_bits(range.network()), to_bits(range.broadcast()));
        let mut candidates = (first..=last).map(|bits| from_bits(bits, family));
        let free = |a: &IpAddr| reserved(record, *a).is_none() && !self.leases.contains_key(a);
        candidates.find(free).ok_or_else(|| {
            let owner = owner.to_string();
            IpamError::Exhausted {
                owner,
                range,
                subnet,
            }
        })
    }

    /// Reads a lease file; `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<Leases>, IpamError> {
        fsutil::read_json(path).map_err(|source| IpamError::LoadLeases {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Writes the lease file atomically (callers that may race with other
    /// processes use [`with_leases`] instead).
    pub fn save(&self, path: &Path) -> Result<(), IpamError> {
        self.write(path, true)
    }

    fn write(&self, path: &Path, durable: bool) -> Result<(), IpamError> {
        let written = if durable {
            fsutil::write_json(path, self)
        } else {
            fsutil::write_json_unsynced(path, self)
        };
        written.map_err(|source| IpamError::SaveLeases {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// An address that is never leased: the gateway, the network address, the
/// IPv4 broadcast address.
fn reserved(record: &SubnetRecord, address: IpAddr) -> Option<&'static str> {
    if address == record.gateway {
        return Some("the gateway");
    }
    reserved_role(&record.subnet.trunc(), address)
}

fn keep_held(owner: &str, held: IpAddr, requested: Option<IpAddr>) -> Result<IpAddr, IpamError> {
    match requested {
        Some(requested) if requested != held => Err(IpamError::OwnerHoldsOther {
            owner: owner.to_string(),
            requested,
            held,
        }),
        _ => Ok(held),
    }
}

/// The lock file of a lease file: `<path>.lock`.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Loads the lease file at `path`, runs `f` on it and saves it when `f`
/// changed it and succeeded, all under an exclusive lock on
/// [`lock_path`]`(path)`, so concurrent processes see each other's leases.
/// The file must exist (it is created with the network, via
/// [`Leases::save`]).
pub fn with_leases<T>(
    path: &Path,
    f: impl FnOnce(&mut Leases) -> Result<T, IpamError>,
) -> Result<T, IpamError> {
    change_leases(path, true, f)
}

/// [`with_leases`] for a change that frees addresses only, saved without
/// waiting for the disk: a crash may bring the freed leases back, and the
/// next lease on the network frees again every lease whose owner has no
/// endpoint record ([`Leases::retain_owners`]).
pub fn free_leases<T>(
    path: &Path,
    f: impl FnOnce(&mut Leases) -> Result<T, IpamError>,
) -> Result<T, IpamError> {
    change_leases(path, false, f)
}

fn change_leases<T>(
    path: &Path,
    durable: bool,
    f: impl FnOnce(&mut Leases) -> Result<T, IpamError>,
) -> Result<T, IpamError> {
    let lock = lock_path(path);
    let _guard = fsutil::lock(&lock).map_err(|source| IpamError::LockLeases {
        path: lock.clone(),
        source,
    })?;
    let mut leases = Leases::load(path)?.ok_or_else(|| IpamError::MissingLeaseFile {
        path: path.to_path_buf(),
    })?;
    let before = leases.clone();
    let out = f(&mut leases)?;
    if leases != before {
        leases.write(path, durable)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::thread;

    use ipnet::IpNet;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn record(subnet: &str, gateway: &str, ip_range: Option<&str>) -> SubnetRecord {
        SubnetRecord {
            subnet: subnet.parse().unwrap(),
            gateway: ip(gateway),
            ip_range: ip_range.map(|r| r.parse::<IpNet>().unwrap()),
        }
    }

    fn v4_leases() -> Leases {
        Leases::new(vec![record("172.18.0.0/16", "172.18.0.1", None)])
    }

    fn dual_stack() -> Leases {
        Leases::new(vec![
            record("172.18.0.0/16", "172.18.0.1", None),
            record("fd00:1::/64", "fd00:1::1", None),
        ])
    }

    #[test]
    fn the_first_addresses_follow_the_gateway_in_order() {
        let mut leases = v4_leases();
        assert_eq!(
            leases.allocate("a", None, IpFamily::V4).unwrap(),
            ip("172.18.0.2")
        );
        assert_eq!(
            leases.allocate("b", None, IpFamily::V4).unwrap(),
            ip("172.18.0.3")
        );
        assert_eq!(leases.owner_of(ip("172.18.0.3")), Some("b"));
    }

    #[test]
    fn allocating_again_for_the_same_owner_returns_the_same_address() {
        let mut leases = v4_leases();
        let first = leases.allocate("a", None, IpFamily::V4).unwrap();
        assert_eq!(leases.allocate("a", None, IpFamily::V4).unwrap(), first);
        assert_eq!(
            leases.allocate("a", Some(first), IpFamily::V4).unwrap(),
            first
        );
        assert_eq!(leases.iter().count(), 1);
    }

    #[test]
    fn retaining_owners_frees_every_address_of_the_others() {
        let mut leases = dual_stack();
        for owner in ["a", "b", "c"] {
            leases.allocate(owner, None, IpFamily::V4).unwrap();
        }
        leases.allocate("b", None, IpFamily::V6).unwrap();
        let freed = leases.retain_owners(|owner| owner != "b");
        assert_eq!(freed, vec![ip("172.18.0.3"), ip("fd00:1::2")]);
        let left: Vec<_> = leases.iter().map(|(_, owner)| owner).collect();
        assert_eq!(left, ["a", "c"]);
    }

    #[test]
    fn freed_leases_are_saved_and_read_back_like_durable_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leases.json");
        let mut leases = v4_leases();
        leases.allocate("a", None, IpFamily::V4).unwrap();
        leases.allocate("b", None, IpFamily::V4).unwrap();
        leases.save(&path).unwrap();
        let freed = free_leases(&path, |l| Ok(l.release("a"))).unwrap();
        assert_eq!(freed, vec![ip("172.18.0.2")]);
        let back = Leases::load(&path).unwrap().unwrap();
        assert_eq!(back.owner_of(ip("172.18.0.2")), None);
        assert_eq!(back.owner_of(ip("172.18.0.3")), Some("b"));
    }

    #[test]
    fn a_released_address_is_the_next_one_handed_out() {
        let mut leases = v4_leases();
        for owner in ["a", "b", "c"] {
            leases.allocate(owner, None, IpFamily::V4).unwrap();
        }
        assert_eq!(leases.release("b"), vec![ip("172.18.0.3")]);
        assert_eq!(leases.release("b"), Vec::<IpAddr>::new());
        assert_eq!(
            leases.allocate("d", None, IpFamily::V4).unwrap(),
            ip("172.18.0.3")
        );
    }

    #[test]
    fn dynamic_addresses_come_from_the_ip_range() {
        let rec = record("172.28.0.0/16", "172.28.0.1", Some("172.28.5.0/24"));
        let mut leases = Leases::new(vec![rec]);
        assert_eq!(
            leases.allocate("a", None, IpFamily::V4).unwrap(),
            ip("172.28.5.0")
        );
        assert_eq!(
            leases.allocate("b", None, IpFamily::V4).unwrap(),
            ip("172.28.5.1")
        );
    }

    #[test]
    fn a_requested_address_outside_the_ip_range_but_inside_the_subnet_is_granted() {
        let rec = record("172.28.0.0/16", "172.28.0.1", Some("172.28.5.0/24"));
        let mut leases = Leases::new(vec![rec]);
        let wanted = ip("172.28.1.10");
        assert_eq!(
            leases.allocate("a", Some(wanted), IpFamily::V4).unwrap(),
            wanted
        );
    }

    #[test]
    fn a_requested_address_outside_the_subnet_is_refused() {
        let err = v4_leases()
            .allocate("a", Some(ip("10.0.0.5")), IpFamily::V4)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to allocate address 10.0.0.5 for a: not inside subnet 172.18.0.0/16"
        );
    }

    #[test]
    fn the_gateway_network_and_broadcast_addresses_are_never_leased() {
        let mut leases = v4_leases();
        for (wanted, role) in [
            ("172.18.0.1", "the gateway"),
            ("172.18.0.0", "the network address"),
            ("172.18.255.255", "the broadcast address"),
        ] {
            let err = leases
                .allocate("a", Some(ip(wanted)), IpFamily::V4)
                .unwrap_err();
            assert!(
                err.to_string()
                    .ends_with(&format!("it is {role} of subnet 172.18.0.0/16"))
            );
        }
    }

    #[test]
    fn requesting_a_leased_address_names_its_owner() {
        let mut leases = v4_leases();
        leases
            .allocate("web", Some(ip("172.18.0.9")), IpFamily::V4)
            .unwrap();
        let err = leases
            .allocate("db", Some(ip("172.18.0.9")), IpFamily::V4)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to allocate address 172.18.0.9 for db: it is leased to web"
        );
    }

    #[test]
    fn an_owner_asking_for_a_second_address_of_a_family_is_refused() {
        let mut leases = v4_leases();
        leases.allocate("a", None, IpFamily::V4).unwrap();
        let err = leases
            .allocate("a", Some(ip("172.18.0.9")), IpFamily::V4)
            .unwrap_err();
        assert!(matches!(err, IpamError::OwnerHoldsOther { .. }), "{err}");
    }

    #[test]
    fn an_owner_holds_one_address_per_family_and_releases_both() {
        let mut leases = dual_stack();
        let v4 = leases.allocate("a", None, IpFamily::V4).unwrap();
        let v6 = leases.allocate("a", None, IpFamily::V6).unwrap();
        assert_eq!((v4, v6), (ip("172.18.0.2"), ip("fd00:1::2")));
        assert_eq!(leases.release("a"), vec![v4, v6]);
    }

    #[test]
    fn an_address_of_a_family_the_network_lacks_is_refused() {
        let err = v4_leases().allocate("a", None, IpFamily::V6).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to allocate an IPv6 address for a: the network has no IPv6 subnet"
        );
        let wrong = v4_leases().allocate("a", Some(ip("fd00::5")), IpFamily::V4);
        assert!(matches!(
            wrong,
            Err(IpamError::AddressFamilyMismatch { .. })
        ));
    }

    #[test]
    fn exhaustion_names_the_range_and_the_subnet() {
        let mut leases = Leases::new(vec![record("10.9.0.0/30", "10.9.0.1", None)]);
        assert_eq!(
            leases.allocate("a", None, IpFamily::V4).unwrap(),
            ip("10.9.0.2")
        );
        let err = leases.allocate("b", None, IpFamily::V4).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to allocate an address for b: no free address left in 10.9.0.0/30 \
             (subnet 10.9.0.0/30)"
        );
    }

    #[test]
    fn the_lease_file_keys_leases_by_address() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leases.json");
        let mut leases = dual_stack();
        leases.allocate("ep1", None, IpFamily::V4).unwrap();
        leases.allocate("ep1", None, IpFamily::V6).unwrap();
        leases.save(&path).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(json["leases"]["172.18.0.2"], "ep1");
        assert_eq!(json["leases"]["fd00:1::2"], "ep1");
        assert_eq!(json["subnets"][0]["gateway"], "172.18.0.1");
        assert_eq!(Leases::load(&path).unwrap(), Some(leases));
    }

    #[test]
    fn loading_a_missing_lease_file_gives_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Leases::load(&dir.path().join("none.json")).unwrap(), None);
    }

    #[test]
    fn the_lock_file_sits_next_to_the_lease_file() {
        let path = Path::new("/state/networks/abc/leases.json");
        assert_eq!(
            lock_path(path),
            Path::new("/state/networks/abc/leases.json.lock")
        );
    }

    #[test]
    fn updating_a_missing_lease_file_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leases.json");
        let err = with_leases(&path, |_| Ok(())).unwrap_err();
        assert!(matches!(err, IpamError::MissingLeaseFile { .. }), "{err}");
    }

    #[test]
    fn an_update_that_fails_leaves_the_lease_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leases.json");
        v4_leases().save(&path).unwrap();
        let result = with_leases(&path, |leases| {
            leases.allocate("a", None, IpFamily::V4)?;
            leases.allocate("b", None, IpFamily::V6)
        });
        assert!(result.is_err());
        assert_eq!(Leases::load(&path).unwrap(), Some(v4_leases()));
    }

    #[test]
    fn concurrent_updates_never_hand_out_one_address_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().join("leases.json"));
        v4_leases().save(&path).unwrap();
        let workers: Vec<_> = (0..8)
            .map(|n| {
                let path = Arc::clone(&path);
                thread::spawn(move || {
                    let owner = format!("ep{n}");
                    with_leases(&path, |l| l.allocate(&owner, None, IpFamily::V4)).unwrap()
                })
            })
            .collect();
        let mut got: Vec<IpAddr> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 8);
        assert_eq!(Leases::load(&path).unwrap().unwrap().iter().count(), 8);
    }
}
