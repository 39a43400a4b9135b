//! Names of the kernel objects netctl creates. Bridges start with `rc-` and
//! host-side veths with `rcv`, so leftovers of a crash can be told apart from
//! anyone else's links; every name fits in an interface name (15 bytes).

use sha2::{Digest, Sha256};

/// Prefix of every bridge netctl names itself.
pub const BRIDGE_PREFIX: &str = "rc-";
/// Prefix of every host-side veth.
pub const VETH_PREFIX: &str = "rcv";
/// Longest Linux interface name.
pub const IFNAME_MAX: usize = 15;

/// A fresh network id: 64 hex digits, unique per creation.
pub fn network_id(name: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pid = std::process::id();
    hex_digest(&[
        name.as_bytes(),
        &now.to_le_bytes(),
        &pid.to_le_bytes(),
        &n.to_le_bytes(),
    ])
}

/// The bridge of a network: `rc-` and the start of its id.
pub fn bridge_name(network_id: &str) -> String {
    let len = IFNAME_MAX - BRIDGE_PREFIX.len();
    format!(
        "{BRIDGE_PREFIX}{}",
        &network_id[..len.min(network_id.len())]
    )
}

/// The host side of a container's veth on a network, stable for the pair.
pub fn host_veth_name(container_id: &str, network: &str) -> String {
    let digest = hex_digest(&[container_id.as_bytes(), b"\0", network.as_bytes()]);
    format!("{VETH_PREFIX}{}", &digest[..IFNAME_MAX - VETH_PREFIX.len()])
}

/// True for a link name netctl could have made.
pub fn is_ours(link: &str) -> bool {
    (link.starts_with(BRIDGE_PREFIX) || link.starts_with(VETH_PREFIX)) && link.len() == IFNAME_MAX
}

/// Checks a user-chosen bridge name (`com.docker.network.bridge.name`).
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= IFNAME_MAX
        && name != "."
        && name != ".."
        && !name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace())
}

fn hex_digest(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_fit_in_an_interface_name_and_are_recognised_as_ours() {
        let id = network_id("shop_front");
        assert_eq!(id.len(), 64);
        let bridge = bridge_name(&id);
        let veth = host_veth_name("abc", "shop_front");
        assert_eq!((bridge.len(), veth.len()), (15, 15));
        assert!(is_ours(&bridge) && is_ours(&veth));
        assert!(!is_ours("veth1234567") && !is_ours("docker0") && !is_ours("rc-short"));
    }

    #[test]
    fn a_veth_name_is_stable_per_container_and_network() {
        assert_eq!(host_veth_name("c1", "n"), host_veth_name("c1", "n"));
        assert_ne!(host_veth_name("c1", "n"), host_veth_name("c1", "m"));
        assert_ne!(network_id("n"), network_id("n"));
    }

    #[test]
    fn bridge_names_from_users_are_checked() {
        assert!(valid_ifname("br-shop"));
        assert!(!valid_ifname("a-very-long-bridge-name"));
        assert!(!valid_ifname("a/b") && !valid_ifname("") && !valid_ifname("a b"));
    }
}
