//! Planning a network's subnets: checking what the stack file configures,
//! and choosing from the pools when it configures nothing.

use std::net::IpAddr;

use ipnet::IpNet;

use super::IpFamily;
use super::addr::{first_host, has_room, is_default_route, overlaps, reserved_role};
use super::error::IpamError;
use super::pools::{SubnetPool, allocate_subnet, default_ipv6_pool, default_pools};
use crate::model::SubnetRecord;

/// One `ipam.config` entry of a network, as the stack file gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpamRequest {
    /// Subnet in CIDR form, e.g. `172.28.0.0/16`.
    pub subnet: Option<String>,
    /// Part of the subnet that dynamic addresses come from.
    pub ip_range: Option<String>,
    /// The bridge's address; defaults to the subnet's first host address.
    pub gateway: Option<String>,
}

/// What a new network's subnet must not overlap.
#[derive(Debug, Clone, Copy, Default)]
pub struct Occupied<'a> {
    /// Other networks by name, one entry per subnet (the network being
    /// planned must not be among them).
    pub networks: &'a [(String, IpNet)],
    /// Destinations of the host's routes; default routes are ignored.
    pub host_routes: &'a [IpNet],
}

impl Occupied<'_> {
    /// Everything a pool subnet must not overlap.
    fn taken(&self) -> Vec<IpNet> {
        let networks = self.networks.iter().map(|(_, net)| *net);
        networks.chain(self.host_routes.iter().copied()).collect()
    }

    /// Checks a configured subnet against networks first, so that an
    /// overlap names the network rather than its bridge's route.
    fn check_free(&self, subnet: &IpNet) -> Result<(), IpamError> {
        if let Some((name, other)) = self.networks.iter().find(|(_, n)| overlaps(subnet, n)) {
            return Err(IpamError::SubnetOverlapsNetwork {
                subnet: *subnet,
                network: name.clone(),
                other: *other,
            });
        }
        let mut routes = self.host_routes.iter().filter(|r| !is_default_route(r));
        match routes.find(|route| overlaps(subnet, route)) {
            Some(route) => Err(IpamError::SubnetOverlapsRoute {
                subnet: *subnet,
                route: *route,
            }),
            None => Ok(()),
        }
    }
}

impl IpamRequest {
    /// Checks the entry on its own, without looking at other networks:
    /// `Ok(None)` when it configures nothing. Subnet and ip_range must be
    /// written without host bits; ip_range and gateway must lie inside the
    /// subnet and be of its family; the gateway must not be the network or
    /// broadcast address.
    pub fn parse(&self) -> Result<Option<SubnetRecord>, IpamError> {
        let Some(text) = self.subnet.as_deref() else {
            if self.ip_range.is_none() && self.gateway.is_none() {
                return Ok(None);
            }
            return Err(IpamError::MissingSubnet);
        };
        let subnet = parse_cidr("subnet", text)?;
        if !has_room(&subnet) {
            return Err(IpamError::SubnetTooSmall { subnet });
        }
        let ip_range = self.ip_range.as_deref();
        let ip_range = ip_range.map(|t| parse_ip_range(t, &subnet)).transpose()?;
        let gateway = match self.gateway.as_deref() {
            Some(text) => parse_gateway(text, &subnet)?,
            None => first_host(&subnet),
        };
        Ok(Some(SubnetRecord {
            subnet,
            gateway,
            ip_range,
        }))
    }
}

fn parse_cidr(field: &'static str, text: &str) -> Result<IpNet, IpamError> {
    let value = || text.to_string();
    let net: IpNet = text.parse().map_err(|source| IpamError::InvalidCidr {
        field,
        value: value(),
        source,
    })?;
    if net.trunc() != net {
        let canonical = net.trunc();
        return Err(IpamError::NotCanonical {
            field,
            value: value(),
            canonical,
        });
    }
    Ok(net)
}

fn parse_ip_range(text: &str, subnet: &IpNet) -> Result<IpNet, IpamError> {
    let ip_range = parse_cidr("ip_range", text)?;
    if IpFamily::of_net(&ip_range) != IpFamily::of_net(subnet) {
        return Err(IpamError::FieldFamilyMismatch {
            field: "ip_range",
            value: ip_range.to_string(),
            subnet: *subnet,
        });
    }
    if !subnet.contains(&ip_range) {
        return Err(IpamError::IpRangeOutsideSubnet {
            ip_range,
            subnet: *subnet,
        });
    }
    Ok(ip_range)
}

fn parse_gateway(text: &str, subnet: &IpNet) -> Result<IpAddr, IpamError> {
    let gateway: IpAddr = text.parse().map_err(|source| IpamError::InvalidGateway {
        value: text.to_string(),
        source,
    })?;
    let subnet = *subnet;
    if IpFamily::of_addr(gateway) != IpFamily::of_net(&subnet) {
        let value = gateway.to_string();
        let field = "gateway";
        return Err(IpamError::FieldFamilyMismatch {
            field,
            value,
            subnet,
        });
    }
    if !subnet.contains(&gateway) {
        return Err(IpamError::GatewayOutsideSubnet { gateway, subnet });
    }
    match reserved_role(&subnet, gateway) {
        Some(role) => Err(IpamError::GatewayReserved {
            gateway,
            subnet,
            role,
        }),
        None => Ok(gateway),
    }
}

/// Plans one subnet of `family` for a new network: the configured one when
/// `requested` configures a subnet (checked, and refused when it overlaps
/// another network or a host route), otherwise the first free subnet of the
/// `pools` of that family with its first host address as gateway.
///
/// When planning several networks at once, add each planned subnet to
/// `occupied` before planning the next.
pub fn plan_subnet(
    requested: Option<&IpamRequest>,
    family: IpFamily,
    pools: &[SubnetPool],
    occupied: &Occupied<'_>,
) -> Result<SubnetRecord, IpamError> {
    let parsed = match requested {
        Some(request) => request.parse()?,
        None => None,
    };
    plan_parsed(parsed, family, pools, occupied)
}

fn plan_parsed(
    parsed: Option<SubnetRecord>,
    family: IpFamily,
    pools: &[SubnetPool],
    occupied: &Occupied<'_>,
) -> Result<SubnetRecord, IpamError> {
    let Some(record) = parsed else {
        return allocate_record(family, pools, occupied);
    };
    if IpFamily::of_net(&record.subnet) != family {
        let subnet = record.subnet;
        return Err(IpamError::WrongFamily {
            subnet,
            expected: family,
        });
    }
    occupied.check_free(&record.subnet)?;
    Ok(record)
}

fn allocate_record(
    family: IpFamily,
    pools: &[SubnetPool],
    occupied: &Occupied<'_>,
) -> Result<SubnetRecord, IpamError> {
    let pools: Vec<SubnetPool> = pools
        .iter()
        .filter(|p| p.family() == family)
        .copied()
        .collect();
    if pools.is_empty() {
        return Err(IpamError::NoPool { family });
    }
    let subnet = allocate_subnet(&pools, &occupied.taken())?;
    Ok(SubnetRecord {
        subnet,
        gateway: first_host(&subnet),
        ip_range: None,
    })
}

/// Plans every subnet of a new bridge network from its `ipam.config`
/// entries: one IPv4 subnet always, one IPv6 subnet when `enable_ipv6`
/// (from the default IPv6 pool of `name` unless one is configured). At most
/// one entry per family; an IPv6 entry needs `enable_ipv6`.
pub fn plan_network_subnets(
    requests: &[IpamRequest],
    enable_ipv6: bool,
    name: &str,
    occupied: &Occupied<'_>,
) -> Result<Vec<SubnetRecord>, IpamError> {
    let (v4, v6) = split_by_family(requests)?;
    if let (Some(record), false) = (&v6, enable_ipv6) {
        let subnet = record.subnet;
        return Err(IpamError::Ipv6NotEnabled { subnet });
    }
    let mut records = vec![plan_parsed(v4, IpFamily::V4, &default_pools(), occupied)?];
    if enable_ipv6 {
        let pools = [default_ipv6_pool(name)];
        records.push(plan_parsed(v6, IpFamily::V6, &pools, occupied)?);
    }
    Ok(records)
}

type ByFamily = (Option<SubnetRecord>, Option<SubnetRecord>);

fn split_by_family(requests: &[IpamRequest]) -> Result<ByFamily, IpamError> {
    let (mut v4, mut v6) = (None, None);
    for record in requests.iter().filter_map(|r| r.parse().transpose()) {
        let record = record?;
        let family = IpFamily::of_net(&record.subnet);
        let slot: &mut Option<SubnetRecord> = match family {
            IpFamily::V4 => &mut v4,
            IpFamily::V6 => &mut v6,
        };
        if let Some(first) = slot {
            let (first, second) = (first.subnet, record.subnet);
            return Err(IpamError::DuplicateFamily {
                family,
                first,
                second,
            });
        }
        *slot = Some(record);
    }
    Ok((v4, v6))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn request(subnet: &str, ip_range: Option<&str>, gateway: Option<&str>) -> IpamRequest {
        IpamRequest {
            subnet: Some(subnet.to_string()),
            ip_range: ip_range.map(str::to_string),
            gateway: gateway.map(str::to_string),
        }
    }

    fn parse_err(req: &IpamRequest) -> String {
        req.parse().unwrap_err().to_string()
    }

    #[test]
    fn a_configured_subnet_gets_its_first_host_as_gateway() {
        let record = request("172.28.0.0/16", None, None)
            .parse()
            .unwrap()
            .unwrap();
        assert_eq!(record.gateway.to_string(), "172.28.0.1");
        assert_eq!(record.ip_range, None);
    }

    #[test]
    fn a_configured_ip_range_and_gateway_are_kept() {
        let req = request("172.28.0.0/16", Some("172.28.5.0/24"), Some("172.28.5.254"));
        let record = req.parse().unwrap().unwrap();
        assert_eq!(record.ip_range, Some(net("172.28.5.0/24")));
        assert_eq!(record.gateway.to_string(), "172.28.5.254");
    }

    #[test]
    fn an_empty_entry_configures_nothing() {
        assert_eq!(IpamRequest::default().parse().unwrap(), None);
    }

    #[test]
    fn a_gateway_without_a_subnet_is_rejected() {
        let req = IpamRequest {
            gateway: Some("10.0.0.1".to_string()),
            ..IpamRequest::default()
        };
        assert!(matches!(req.parse(), Err(IpamError::MissingSubnet)));
    }

    #[test]
    fn a_subnet_with_host_bits_set_is_rejected_with_its_canonical_form() {
        let err = parse_err(&request("172.28.5.0/16", None, None));
        assert_eq!(
            err,
            r#"failed to read ipam subnet "172.28.5.0/16": it should be 172.28.0.0/16"#
        );
    }

    #[test]
    fn an_ip_range_outside_the_subnet_is_rejected() {
        let err = parse_err(&request("10.1.0.0/16", Some("10.2.0.0/24"), None));
        assert!(
            err.contains("ip_range 10.2.0.0/24: not inside subnet 10.1.0.0/16"),
            "{err}"
        );
        let wider = parse_err(&request("10.1.0.0/16", Some("10.0.0.0/8"), None));
        assert!(wider.contains("not inside subnet"), "{wider}");
    }

    #[test]
    fn a_gateway_on_the_network_or_broadcast_address_is_rejected() {
        let network = parse_err(&request("10.1.0.0/24", None, Some("10.1.0.0")));
        assert!(network.contains("it is the network address"), "{network}");
        let broadcast = parse_err(&request("10.1.0.0/24", None, Some("10.1.0.255")));
        assert!(
            broadcast.contains("it is the broadcast address"),
            "{broadcast}"
        );
    }

    #[test]
    fn a_gateway_of_the_other_family_is_rejected() {
        let err = parse_err(&request("10.1.0.0/24", None, Some("fd00::1")));
        assert!(
            err.contains("fd00::1 of subnet 10.1.0.0/24: not in the subnet's address family"),
            "{err}"
        );
    }

    #[test]
    fn a_slash_thirty_one_is_too_small_for_a_network() {
        let err = parse_err(&request("10.1.0.0/31", None, None));
        assert!(err.contains("too small"), "{err}");
    }

    #[test]
    fn a_configured_subnet_that_overlaps_a_network_names_that_network() {
        let networks = [("shop_back".to_string(), net("10.1.0.0/16"))];
        let occupied = Occupied {
            networks: &networks,
            host_routes: &[net("10.1.0.0/16")],
        };
        let req = request("10.1.2.0/24", None, None);
        let err = plan_subnet(Some(&req), IpFamily::V4, &[], &occupied).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to plan subnet 10.1.2.0/24: it overlaps 10.1.0.0/16 of network shop_back"
        );
    }

    #[test]
    fn a_configured_subnet_that_overlaps_a_host_route_names_the_route() {
        let routes = [net("0.0.0.0/0"), net("10.0.0.0/8")];
        let occupied = Occupied {
            networks: &[],
            host_routes: &routes,
        };
        let req = request("10.1.2.0/24", None, None);
        let err = plan_subnet(Some(&req), IpFamily::V4, &[], &occupied).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("overlaps the host route to 10.0.0.0/8"),
            "{err}"
        );
    }

    #[test]
    fn a_configured_subnet_of_the_other_family_is_refused() {
        let req = request("fd00:1::/64", None, None);
        let err = plan_subnet(Some(&req), IpFamily::V4, &[], &Occupied::default());
        assert!(matches!(err, Err(IpamError::WrongFamily { .. })));
    }

    #[test]
    fn without_a_configured_subnet_the_first_free_pool_subnet_is_planned() {
        let networks = [("other".to_string(), net("172.17.0.0/16"))];
        let occupied = Occupied {
            networks: &networks,
            host_routes: &[],
        };
        let record = plan_subnet(None, IpFamily::V4, &default_pools(), &occupied).unwrap();
        assert_eq!(record.subnet, net("172.18.0.0/16"));
        assert_eq!(record.gateway.to_string(), "172.18.0.1");
    }

    #[test]
    fn planning_a_family_without_a_pool_of_it_fails() {
        let err = plan_subnet(None, IpFamily::V6, &default_pools(), &Occupied::default());
        assert!(matches!(
            err,
            Err(IpamError::NoPool {
                family: IpFamily::V6
            })
        ));
    }

    #[test]
    fn a_network_gets_an_ipv6_subnet_only_with_enable_ipv6() {
        let occupied = Occupied::default();
        let v4_only = plan_network_subnets(&[], false, "shop_front", &occupied).unwrap();
        assert_eq!(v4_only.len(), 1);
        let both = plan_network_subnets(&[], true, "shop_front", &occupied).unwrap();
        let pool = default_ipv6_pool("shop_front").base();
        assert!(pool.contains(&both[1].subnet) && both[1].subnet.prefix_len() == 64);
    }

    #[test]
    fn a_configured_ipv6_subnet_is_used_and_the_ipv4_one_still_allocated() {
        let reqs = [request("fd00:1::/64", None, None)];
        let records = plan_network_subnets(&reqs, true, "n", &Occupied::default()).unwrap();
        assert_eq!(records[0].subnet, net("172.17.0.0/16"));
        assert_eq!(records[1].subnet, net("fd00:1::/64"));
        assert_eq!(records[1].gateway.to_string(), "fd00:1::1");
    }

    #[test]
    fn two_subnets_of_one_family_on_one_network_are_refused() {
        let reqs = [
            request("10.1.0.0/24", None, None),
            request("10.2.0.0/24", None, None),
        ];
        let err = plan_network_subnets(&reqs, false, "n", &Occupied::default()).unwrap_err();
        assert!(matches!(err, IpamError::DuplicateFamily { .. }), "{err}");
    }

    #[test]
    fn an_ipv6_subnet_without_enable_ipv6_is_refused() {
        let reqs = [request("fd00:1::/64", None, None)];
        let err = plan_network_subnets(&reqs, false, "n", &Occupied::default()).unwrap_err();
        assert!(matches!(err, IpamError::Ipv6NotEnabled { .. }), "{err}");
    }

    #[test]
    fn ipam_error_messages_read_as_what_was_being_done() {
        let cases = [
            request("not-a-subnet", None, None),
            request("10.0.0.0", None, None),
            request("10.0.0.1/24", None, None),
            request("10.0.0.0/24", Some("10.0.0.128/24"), None),
            request("10.0.0.0/24", Some("10.0.1.0/25"), None),
            request("10.0.0.0/24", Some("fd00::/120"), None),
            request("10.0.0.0/24", None, Some("gateway")),
            request("10.0.0.0/24", None, Some("10.0.1.1")),
            request("10.0.0.0/24", None, Some("10.0.0.255")),
            request("fd00::/64", None, Some("fd00::")),
            request("fd00::/127", None, None),
        ];
        let text: Vec<String> = cases.iter().map(parse_err).collect();
        insta::assert_snapshot!(text.join("\n"));
    }
}
