//! Small builders for the handful of nftables statements our table uses,
//! so that the rule functions in `render` read like the nft text they
//! produce (`iifname("rc-a")`, `masquerade()`).
//!
//! Invariant: every builder returns owned (`'static`) values and uses only
//! single-element flag sets, because the `nftables` crate keeps flags in a
//! `HashSet` whose iteration order would make the rendering
//! non-deterministic.

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;
use nftables::expr::{
    CT, Expression, Fib, FibFlag, FibResult, Meta, MetaKey, NamedExpression, Payload, PayloadField,
    Prefix,
};
use nftables::stmt::{JumpTarget, Match, NAT, NATFamily, Operator, Statement};

use crate::model::Protocol;

/// An owned statement, as every rule of ours is built from.
pub(super) type Stmt = Statement<'static>;

fn matches(left: Expression<'static>, op: Operator, right: Expression<'static>) -> Stmt {
    Statement::Match(Match { left, right, op })
}

fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn ct(key: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::CT(CT {
        key: key.into(),
        family: None,
        dir: None,
    }))
}

fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: protocol.into(),
            field: field.into(),
        },
    )))
}

fn string(s: &str) -> Expression<'static> {
    Expression::String(s.to_owned().into())
}

/// `ip` or `ip6`, the payload protocol carrying addresses of `addr`'s family.
fn ip_protocol(addr: IpAddr) -> &'static str {
    if addr.is_ipv4() { "ip" } else { "ip6" }
}

/// `iifname NAME`.
pub(super) fn iifname(name: &str) -> Stmt {
    matches(meta(MetaKey::Iifname), Operator::EQ, string(name))
}

/// `iifname != NAME`.
pub(super) fn iifname_ne(name: &str) -> Stmt {
    matches(meta(MetaKey::Iifname), Operator::NEQ, string(name))
}

/// `oifname NAME`.
pub(super) fn oifname(name: &str) -> Stmt {
    matches(meta(MetaKey::Oifname), Operator::EQ, string(name))
}

/// `oifname != NAME`.
pub(super) fn oifname_ne(name: &str) -> Stmt {
    matches(meta(MetaKey::Oifname), Operator::NEQ, string(name))
}

/// `oifname { A, B, … }`.
pub(super) fn oifname_in(names: &[&str]) -> Stmt {
    let items = names
        .iter()
        .map(|n| nftables::expr::SetItem::Element(string(n)))
        .collect();
    matches(
        meta(MetaKey::Oifname),
        Operator::EQ,
        Expression::Named(NamedExpression::Set(items)),
    )
}

/// `ct state established,related`.
pub(super) fn ct_established_or_related() -> Stmt {
    let states = vec![string("established"), string("related")];
    matches(ct("state"), Operator::IN, Expression::List(states))
}

/// `ct status dnat`: a flag test (`in`), since other status bits are set too.
pub(super) fn ct_status_dnat() -> Stmt {
    matches(ct("status"), Operator::IN, string("dnat"))
}

/// `fib daddr type local`: the destination is one of this host's addresses.
pub(super) fn fib_daddr_local() -> Stmt {
    let fib = Fib {
        result: FibResult::Type,
        flags: HashSet::from([FibFlag::Daddr]),
    };
    matches(
        Expression::Named(NamedExpression::Fib(fib)),
        Operator::EQ,
        string("local"),
    )
}

/// `meta nfproto ipv4|ipv6`, the family of `addr`.
pub(super) fn nfproto_of(addr: IpAddr) -> Stmt {
    let family = if addr.is_ipv4() { "ipv4" } else { "ipv6" };
    matches(meta(MetaKey::Nfproto), Operator::EQ, string(family))
}

/// `ip saddr NET` or `ip6 saddr NET`.
pub(super) fn saddr_in(net: IpNet) -> Stmt {
    addr_in("saddr", net)
}

/// `ip daddr NET` or `ip6 daddr NET`.
pub(super) fn daddr_in(net: IpNet) -> Stmt {
    addr_in("daddr", net)
}

fn addr_in(field: &'static str, net: IpNet) -> Stmt {
    let prefix = Prefix {
        addr: Box::new(string(&net.addr().to_string())),
        len: net.prefix_len().into(),
    };
    matches(
        payload(ip_protocol(net.addr()), field),
        Operator::EQ,
        Expression::Named(NamedExpression::Prefix(prefix)),
    )
}

/// `ip daddr ADDR` or `ip6 daddr ADDR`.
pub(super) fn daddr_is(addr: IpAddr) -> Stmt {
    matches(
        payload(ip_protocol(addr), "daddr"),
        Operator::EQ,
        string(&addr.to_string()),
    )
}

/// `tcp dport PORT` or `udp dport PORT`.
pub(super) fn dport_is(protocol: Protocol, port: u16) -> Stmt {
    matches(
        payload(protocol.as_str(), "dport"),
        Operator::EQ,
        Expression::Number(port.into()),
    )
}

/// `dnat ip to ADDR:PORT` (or `ip6`); the family is required in an inet table.
pub(super) fn dnat_to(addr: IpAddr, port: u16) -> Stmt {
    let family = if addr.is_ipv4() {
        NATFamily::IP
    } else {
        NATFamily::IP6
    };
    Statement::DNAT(Some(NAT {
        addr: Some(string(&addr.to_string())),
        family: Some(family),
        port: Some(Expression::Number(port.into())),
        flags: None,
    }))
}

/// `masquerade`.
pub(super) fn masquerade() -> Stmt {
    Statement::Masquerade(None)
}

/// `accept`.
pub(super) fn accept() -> Stmt {
    Statement::Accept(None)
}

/// `drop`.
pub(super) fn drop() -> Stmt {
    Statement::Drop(None)
}

/// `jump CHAIN`.
pub(super) fn jump(chain: &'static str) -> Stmt {
    Statement::Jump(JumpTarget {
        target: chain.into(),
    })
}
