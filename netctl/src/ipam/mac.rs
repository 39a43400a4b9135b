//! MAC addresses of container interfaces: derived from the IPv4 address the
//! way the bridge driver does, or given by the user and checked.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use super::error::IpamError;

/// A 6-byte Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddress([u8; 6]);

impl MacAddress {
    /// `02:42` followed by the four bytes of `address`, e.g.
    /// `02:42:ac:11:00:02` for `172.17.0.2`: locally administered, unicast,
    /// and unique on a network because the address is.
    pub fn from_ipv4(address: Ipv4Addr) -> MacAddress {
        let [a, b, c, d] = address.octets();
        MacAddress([0x02, 0x42, a, b, c, d])
    }

    /// The six bytes.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Checks a user's `mac_address`: six pairs of hex digits separated by
    /// `:` (or all by `-`), not a multicast or all-zero address.
    pub fn parse(text: &str) -> Result<MacAddress, IpamError> {
        let invalid = |reason| IpamError::InvalidMac {
            value: text.to_string(),
            reason,
        };
        let octets = parse_octets(text).ok_or_else(|| {
            invalid("expected six pairs of hex digits separated by ':', like 02:42:ac:11:00:02")
        })?;
        if octets[0] & 0x01 != 0 {
            return Err(invalid("a multicast address cannot name an interface"));
        }
        if octets == [0; 6] {
            return Err(invalid("the all-zero address cannot name an interface"));
        }
        Ok(MacAddress(octets))
    }
}

fn parse_octets(text: &str) -> Option<[u8; 6]> {
    let separator = if text.contains('-') { '-' } else { ':' };
    let mut octets = [0u8; 6];
    let mut parts = text.split(separator);
    for octet in &mut octets {
        let part = parts.next()?;
        let two_hex = part.len() == 2 && part.bytes().all(|b| b.is_ascii_hexdigit());
        if !two_hex {
            return None;
        }
        *octet = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(octets)
}

impl FromStr for MacAddress {
    type Err = IpamError;

    fn from_str(text: &str) -> Result<MacAddress, IpamError> {
        MacAddress::parse(text)
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(text: &str) -> String {
        MacAddress::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn the_mac_of_an_ipv4_address_is_02_42_and_its_bytes() {
        let mac = MacAddress::from_ipv4(Ipv4Addr::new(172, 17, 0, 2));
        assert_eq!(mac.to_string(), "02:42:ac:11:00:02");
    }

    #[test]
    fn a_user_mac_is_printed_back_in_lowercase_with_colons() {
        assert_eq!(
            MacAddress::parse("02:42:AC:11:00:0A").unwrap().to_string(),
            "02:42:ac:11:00:0a"
        );
        let dashed: MacAddress = "92-d0-c6-0a-29-33".parse().unwrap();
        assert_eq!(dashed.octets(), [0x92, 0xd0, 0xc6, 0x0a, 0x29, 0x33]);
    }

    #[test]
    fn a_multicast_mac_is_refused() {
        assert!(reason("01:00:5e:00:00:01").contains("multicast"));
        assert!(reason("ff:ff:ff:ff:ff:ff").contains("multicast"));
    }

    #[test]
    fn the_all_zero_mac_is_refused() {
        assert!(reason("00:00:00:00:00:00").contains("all-zero"));
    }

    #[test]
    fn a_mac_of_the_wrong_length_or_shape_is_refused() {
        for text in [
            "",
            "02:42:ac:11:00",
            "02:42:ac:11:00:02:03",
            "2:42:ac:11:00:02",
            "02:42:ac:11:00:0g",
            "02-42:ac:11:00:02",
            "+2:42:ac:11:00:02",
            "0242ac110002",
        ] {
            assert!(reason(text).contains("six pairs of hex digits"), "{text}");
        }
    }
}
