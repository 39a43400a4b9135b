//! Field-level diff of two service projections, so that a cause names
//! `environment.FOO: a → b` rather than a changed hash.

use std::collections::BTreeSet;

use super::Change;
use crate::backend::ObservedContainer;
use crate::desired::DesiredService;

/// The fields that differ, or the hashes when the host kept no projection.
pub(super) fn config_changes(svc: &DesiredService, current: &ObservedContainer) -> Vec<Change> {
    let mut out = Vec::new();
    if let Some(old) = &current.config {
        diff_json("", old, &svc.config, &mut out);
    }
    if out.is_empty() {
        out.push(Change::new(
            "config hash",
            short(&current.config_hash),
            short(&svc.config_hash),
        ));
    }
    out
}

fn short(hash: &str) -> String {
    match hash.get(..12) {
        Some(s) if hash.len() > 12 => format!("{s}…"),
        _ => hash.to_string(),
    }
}

/// The differing fields of two settings values, as `a: x → y, b: …`.
pub(super) fn describe_changes<T: serde::Serialize>(old: &T, new: &T) -> String {
    let parts: Vec<String> = settings_changes("", old, new)
        .iter()
        .map(Change::to_string)
        .collect();
    parts.join(", ")
}

/// The differing fields of two settings values, each path under `prefix`
/// (`networks.front` gives `networks.front.internal`); one change named
/// `prefix` when they do not serialize.
pub(super) fn settings_changes<T: serde::Serialize>(prefix: &str, old: &T, new: &T) -> Vec<Change> {
    let (Ok(old), Ok(new)) = (serde_json::to_value(old), serde_json::to_value(new)) else {
        let field = if prefix.is_empty() {
            "settings"
        } else {
            prefix
        };
        return vec![Change::new(field, None, "changed".to_string())];
    };
    let mut out = Vec::new();
    diff_json(prefix, &old, &new, &mut out);
    out
}

/// `sha256:0123456789ab…`: the algorithm and the first 12 hex digits.
pub(super) fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algorithm, hex)) => format!("{algorithm}:{}", short(hex)),
        None => short(digest),
    }
}

/// Appends the leaves that differ between `old` and `new`; objects are
/// walked key by key (sorted), anything else is compared whole.
fn diff_json(path: &str, old: &serde_json::Value, new: &serde_json::Value, out: &mut Vec<Change>) {
    use serde_json::Value;
    if old == new {
        return;
    }
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => diff_json(&join(k), x, y, out),
                    (x, y) => out.push(Change::new(&join(k), x.map(entry), y.map(entry))),
                }
            }
        }
        _ => out.push(Change::new(path, scalar(old), scalar(new))),
    }
}

/// A map entry that is there on one side only: an entry without a value
/// (`networks: {front: null}`, the short syntax) reads `present`.
fn entry(v: &serde_json::Value) -> String {
    if v.is_null() {
        "present".to_string()
    } else {
        scalar(v)
    }
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
