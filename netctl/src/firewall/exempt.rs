//! Keeping another tool's `FORWARD` drop policy from cutting our networks off.
//!
//! A packet passes every base chain on a hook: an accept in our `forward`
//! chain does not overrule a drop in iptables-nft's `ip filter FORWARD`
//! (docker, for one, sets its policy to drop). When such a chain drops by
//! default, we insert at its top one `accept` per direction and bridge of
//! ours, tagged with the comment `rcompose`; our own `forward` chain still
//! decides what crosses our bridges. With no bridge left, our rules are
//! deleted again.
//!
//! Only the two `FORWARD` chains of the `filter` tables are ever listed, and
//! read as plain JSON (they may hold expressions the typed model lacks).
//! The planning is pure; `NftFirewall` runs it.

use serde_json::{Value, json};

/// Comment that marks our rules in a foreign chain.
pub const EXEMPT_COMMENT: &str = "rcompose";

/// The chains we look at: (family, table, chain).
pub const FOREIGN_FORWARD: [(&str, &str, &str); 2] =
    [("ip", "filter", "FORWARD"), ("ip6", "filter", "FORWARD")];

/// What a listed foreign chain says about us.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ForeignChain {
    /// The chain's policy is drop.
    pub drops: bool,
    /// Handles of our rules in it.
    pub ours: Vec<u64>,
    /// The bridges our rules accept, in order (to skip no-op rewrites).
    pub exempted: Vec<String>,
}

impl ForeignChain {
    /// Reads `nft -j list chain <family> filter FORWARD` output.
    pub fn from_listing(listing: &Value) -> ForeignChain {
        let mut out = ForeignChain::default();
        for object in listing["nftables"].as_array().into_iter().flatten() {
            if let Some(chain) = object.get("chain") {
                out.drops = chain["policy"] == "drop";
            }
            let Some(rule) = object.get("rule") else {
                continue;
            };
            if rule["comment"] != EXEMPT_COMMENT {
                continue;
            }
            out.ours.extend(rule["handle"].as_u64());
            if let Some(bridge) = rule["expr"][0]["match"]["right"].as_str() {
                out.exempted.push(bridge.to_string());
            }
        }
        out
    }
}

/// The batch that makes our rules in one foreign chain accept exactly
/// `bridges` (none when the chain does not drop), or `None` when nothing
/// needs to change.
pub fn plan(
    family: &str,
    table: &str,
    chain: &str,
    found: &ForeignChain,
    bridges: &[String],
) -> Option<Value> {
    let mut wanted: Vec<String> = if found.drops {
        bridges
            .iter()
            .flat_map(|b| [b.clone(), b.clone()])
            .collect()
    } else {
        Vec::new()
    };
    // Inserting at the top reverses the order: compare as multisets.
    let mut have = found.exempted.clone();
    wanted.sort();
    have.sort();
    if wanted == have {
        return None;
    }
    let mut batch: Vec<Value> = found
        .ours
        .iter()
        .map(|handle| json!({"delete": {"rule": {"family": family, "table": table, "chain": chain, "handle": handle}}}))
        .collect();
    for bridge in bridges.iter().filter(|_| found.drops) {
        for key in ["iifname", "oifname"] {
            let expr = json!([
                {"match": {"op": "==", "left": {"meta": {"key": key}}, "right": bridge}},
                {"accept": null}
            ]);
            let rule = json!({"family": family, "table": table, "chain": chain, "expr": expr, "comment": EXEMPT_COMMENT});
            batch.push(json!({"insert": {"rule": rule}}));
        }
    }
    Some(json!({"nftables": batch}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(policy: &str, ours: &[(&str, u64)]) -> Value {
        let mut objects = vec![
            json!({"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "policy": policy}}),
        ];
        for (bridge, handle) in ours {
            objects.push(
                json!({"rule": {"handle": handle, "comment": "rcompose", "expr": [
                    {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": bridge}},
                    {"accept": null}
                ]}}),
            );
        }
        objects.push(json!({"rule": {"handle": 99, "expr": [{"xt": {"type": "match", "name": "conntrack"}}]}}));
        json!({"nftables": objects})
    }

    #[test]
    fn a_dropping_chain_gets_one_accept_per_direction_and_bridge() {
        let found = ForeignChain::from_listing(&listing("drop", &[]));
        assert!(found.drops && found.ours.is_empty());
        let batch = plan("ip", "filter", "FORWARD", &found, &["rc-a".into()]).unwrap();
        let text = batch.to_string();
        assert_eq!(batch["nftables"].as_array().unwrap().len(), 2);
        assert!(
            text.contains("\"iifname\"") && text.contains("\"oifname\"") && text.contains("rc-a")
        );
    }

    #[test]
    fn our_rules_are_replaced_when_bridges_change_and_left_alone_when_they_do_not() {
        let found = ForeignChain::from_listing(&listing("drop", &[("rc-a", 7), ("rc-a", 8)]));
        assert_eq!(found.ours, vec![7, 8]);
        assert_eq!(
            plan("ip", "filter", "FORWARD", &found, &["rc-a".into()]),
            None
        );
        let batch = plan(
            "ip",
            "filter",
            "FORWARD",
            &found,
            &["rc-a".into(), "rc-b".into()],
        )
        .unwrap();
        let ops: Vec<&str> = batch["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_object().unwrap().keys().next().unwrap().as_str())
            .collect();
        assert_eq!(
            ops,
            ["delete", "delete", "insert", "insert", "insert", "insert"]
        );
    }

    #[test]
    fn nothing_is_added_to_an_accepting_chain_and_leftovers_are_deleted() {
        assert_eq!(
            plan(
                "ip",
                "filter",
                "FORWARD",
                &ForeignChain::from_listing(&listing("accept", &[])),
                &["rc-a".into()]
            ),
            None
        );
        let stale = ForeignChain::from_listing(&listing("accept", &[("rc-a", 3)]));
        let batch = plan("ip", "filter", "FORWARD", &stale, &["rc-a".into()]).unwrap();
        assert_eq!(batch["nftables"][0]["delete"]["rule"]["handle"], 3);
        assert_eq!(batch["nftables"].as_array().unwrap().len(), 1);
    }
}
