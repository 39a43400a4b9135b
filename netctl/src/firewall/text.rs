//! A pure rendering of our batches in nft's own script syntax (one command
//! per line, as `nft -f` reads it), for golden tests, logs and people.
//!
//! Invariant: it covers exactly the statements and expressions `render`
//! produces; anything else comes out as `<unrendered: JSON>`, which nft
//! refuses, so a gap shows up instead of silently changing meaning. A root
//! test checks that the text and the JSON batch build the same table.

use nftables::expr::{Expression, NamedExpression, Payload, SetItem};
use nftables::schema::{Chain, NfCmd, NfListObject, NfObject, Nftables, Rule, Table};
use nftables::stmt::{Match, NAT, Operator, Statement};
use serde::Serialize;

/// The batch as an nft script, one command per line.
pub fn to_nft_text(ruleset: &Nftables<'_>) -> String {
    ruleset
        .objects
        .iter()
        .map(|obj| command(obj) + "\n")
        .collect()
}

fn command(obj: &NfObject<'_>) -> String {
    match obj {
        NfObject::CmdObject(NfCmd::Add(inner)) => format!("add {}", object(inner)),
        NfObject::CmdObject(NfCmd::Delete(inner)) => format!("delete {}", object(inner)),
        other => unrendered(other),
    }
}

fn object(obj: &NfListObject<'_>) -> String {
    match obj {
        NfListObject::Table(t) => table(t),
        NfListObject::Chain(c) => chain(c),
        NfListObject::Rule(r) => rule(r),
        other => unrendered(other),
    }
}

fn table(t: &Table<'_>) -> String {
    format!("table {} {}", serde_name(&t.family), t.name)
}

fn chain(c: &Chain<'_>) -> String {
    let head = format!("chain {} {} {}", serde_name(&c.family), c.table, c.name);
    let (Some(kind), Some(hook), Some(prio)) = (&c._type, &c.hook, c.prio) else {
        return head;
    };
    let policy = c
        .policy
        .as_ref()
        .map(|p| format!(" policy {};", serde_name(p)))
        .unwrap_or_default();
    format!(
        "{head} {{ type {} hook {} priority {prio};{policy} }}",
        serde_name(kind),
        serde_name(hook)
    )
}

fn rule(r: &Rule<'_>) -> String {
    let stmts: Vec<String> = r.expr.iter().map(statement).collect();
    format!(
        "rule {} {} {} {}",
        serde_name(&r.family),
        r.table,
        r.chain,
        stmts.join(" ")
    )
}

fn statement(s: &Statement<'_>) -> String {
    match s {
        Statement::Match(m) => matches(m),
        Statement::Accept(_) => "accept".into(),
        Statement::Drop(_) => "drop".into(),
        Statement::Jump(target) => format!("jump {}", target.target),
        Statement::Masquerade(None) => "masquerade".into(),
        Statement::DNAT(Some(nat)) => dnat(nat).unwrap_or_else(|| unrendered(s)),
        other => unrendered(other),
    }
}

/// `==` and flag tests (`in`) are implicit in nft's syntax.
fn matches(m: &Match<'_>) -> String {
    let op = match m.op {
        Operator::EQ | Operator::IN => "",
        Operator::NEQ => "!= ",
        _ => return unrendered(m),
    };
    // Interface names are strings to nft and must be quoted; symbolic
    // constants (`established`, `local`, `ipv4`) must not.
    let quote = matches!(&m.left, Expression::Named(NamedExpression::Meta(meta))
        if matches!(serde_name(&meta.key).as_str(), "iifname" | "oifname"));
    format!("{} {op}{}", expr(&m.left, false), expr(&m.right, quote))
}

fn dnat(nat: &NAT<'_>) -> Option<String> {
    let family = serde_name(nat.family.as_ref()?);
    let addr = expr(nat.addr.as_ref()?, false);
    let addr = if family == "ip6" {
        format!("[{addr}]")
    } else {
        addr
    };
    Some(format!(
        "dnat {family} to {addr}:{}",
        expr(nat.port.as_ref()?, false)
    ))
}

fn expr(e: &Expression<'_>, quote: bool) -> String {
    match e {
        Expression::String(s) if quote => format!("{s:?}"),
        Expression::String(s) => s.to_string(),
        Expression::Number(n) => n.to_string(),
        Expression::List(items) => items
            .iter()
            .map(|i| expr(i, quote))
            .collect::<Vec<_>>()
            .join(","),
        Expression::Named(named) => named_expr(named, quote),
        other => unrendered(other),
    }
}

fn named_expr(e: &NamedExpression<'_>, quote: bool) -> String {
    match e {
        NamedExpression::Meta(meta) => match serde_name(&meta.key).as_str() {
            key @ ("iifname" | "oifname") => key.to_owned(),
            key => format!("meta {key}"),
        },
        NamedExpression::CT(ct) if ct.family.is_none() && ct.dir.is_none() => {
            format!("ct {}", ct.key)
        }
        NamedExpression::Payload(Payload::PayloadField(f)) => format!("{} {}", f.protocol, f.field),
        NamedExpression::Prefix(p) => format!("{}/{}", expr(&p.addr, false), p.len),
        NamedExpression::Fib(fib) if fib.flags.len() == 1 => {
            let flag = fib.flags.iter().next().map(serde_name).unwrap_or_default();
            format!("fib {flag} {}", serde_name(&fib.result))
        }
        NamedExpression::Set(items) => set(items, quote).unwrap_or_else(|| unrendered(e)),
        other => unrendered(other),
    }
}

fn set(items: &[SetItem<'_>], quote: bool) -> Option<String> {
    let elems: Option<Vec<String>> = items
        .iter()
        .map(|item| match item {
            SetItem::Element(e) => Some(expr(e, quote)),
            _ => None,
        })
        .collect();
    Some(format!("{{ {} }}", elems?.join(", ")))
}

/// The name serde gives a unit enum variant (`inet`, `nat`, `prerouting`).
fn serde_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("<unrendered: {other:?}>"),
    }
}

fn unrendered<T: Serialize>(value: &T) -> String {
    let json = serde_json::to_string(value).unwrap_or_else(|e| e.to_string());
    format!("<unrendered: {json}>")
}
