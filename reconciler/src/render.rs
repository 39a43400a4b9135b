//! Renderers of a [`Plan`]: human text for a terminal, a versioned JSON
//! document for machines (`rcompose plan --format json`, documented in
//! `docs/plan-json.md`) and markdown for a pull-request comment.
//!
//! Invariants: every renderer reads an operation through `OpView`, which
//! asks the action's own methods for its symbol, description and service
//! and serde for its tag and name, so an [`crate::plan::Action`] variant
//! added later renders without a change here; the JSON document only
//! grows within a [`PLAN_SCHEMA_VERSION`] (fields are added, never renamed,
//! retyped or removed); colour codes appear only when asked for.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use owo_colors::OwoColorize;

use crate::plan::{Change, Op, Plan};

mod diff;
mod markdown;

pub use markdown::render_markdown;

/// Version of the JSON document [`render_json`] returns.
pub const PLAN_SCHEMA_VERSION: u32 = 1;

/// Known verbs in the order a summary shows them; verbs added later
/// follow, sorted.
const VERB_ORDER: [&str; 9] = [
    "create", "recreate", "remove", "pull", "start", "stop", "restart", "wait", "run",
];

/// Verbs the human summary line always shows, even at zero.
const HUMAN_VERBS: [&str; 3] = ["create", "recreate", "remove"];

/// Verbs the JSON summary always holds, even at zero (schema version 1).
const JSON_VERBS: [&str; 6] = ["create", "recreate", "remove", "pull", "start", "stop"];

/// The summary line of an empty plan.
const NO_CHANGES: &str = "No changes. The host matches the stack file.";

/// One operation as the renderers see it.
struct OpView<'a> {
    index: usize,
    op: &'a Op,
    /// Serde tag of the action: `create-container`, `wait-for`.
    tag: String,
    /// First word of the tag: `create`, `wait`.
    verb: String,
    /// Name of the object acted on (container, network, volume, image;
    /// the service waited for).
    name: String,
    /// Service, for operations on containers and waits.
    service: Option<String>,
}

impl<'a> OpView<'a> {
    fn new(index: usize, op: &'a Op) -> Self {
        let value = serde_json::to_value(&op.action).unwrap_or_default();
        let text = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_string);
        let tag = text("action").unwrap_or_else(|| "unknown".into());
        let verb = tag.split('-').next().unwrap_or_default().to_string();
        let name = ["name", "reference", "dependency"]
            .iter()
            .find_map(|k| text(k))
            .unwrap_or_else(|| op.id.clone());
        Self {
            index,
            op,
            verb,
            name,
            service: op.action.service().map(str::to_string),
            tag,
        }
    }

    /// `+` create or pull, `-` remove or stop, `~` recreate or restart,
    /// `>` start, `*` wait.
    fn symbol(&self) -> &'static str {
        self.op.action.symbol()
    }

    /// `create container shop-web-1`.
    fn describe(&self) -> String {
        self.op.action.describe()
    }

    /// ` after [0] [3]`, or nothing.
    fn after(&self) -> String {
        if self.op.deps.is_empty() {
            return String::new();
        }
        let deps: Vec<String> = self.op.deps.iter().map(|d| format!("[{d}]")).collect();
        format!(" after {}", deps.join(" "))
    }
}

fn views(plan: &Plan) -> Vec<OpView<'_>> {
    plan.ops
        .iter()
        .enumerate()
        .map(|(i, op)| OpView::new(i, op))
        .collect()
}

/// Rank of a resource id's kind: networks, volumes, images, services, rest.
fn kind_rank(id: &str) -> u8 {
    match id.split(':').next().unwrap_or_default() {
        "network" => 0,
        "volume" => 1,
        "image" => 2,
        "service" => 3,
        _ => 4,
    }
}

/// The operations grouped by resource id: kinds in [`kind_rank`] order,
/// ids of one kind in the order they first appear in the plan.
fn groups<'v, 'a>(views: &'v [OpView<'a>]) -> Vec<(&'a str, Vec<&'v OpView<'a>>)> {
    let mut groups: Vec<(&'a str, Vec<&'v OpView<'a>>)> = Vec::new();
    for view in views {
        match groups.iter_mut().find(|(id, _)| *id == view.op.id) {
            Some((_, ops)) => ops.push(view),
            None => groups.push((&view.op.id, vec![view])),
        }
    }
    groups.sort_by_key(|(id, _)| kind_rank(id));
    groups
}

/// Number of operations per verb: the verbs of `always` even at zero, the
/// others when they occur.
fn summary(views: &[OpView<'_>], always: &[&str]) -> Vec<(String, usize)> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for view in views {
        *counts.entry(view.verb.as_str()).or_default() += 1;
    }
    let mut out = Vec::new();
    for verb in VERB_ORDER {
        match counts.remove(verb) {
            Some(n) => out.push((verb.to_string(), n)),
            None if always.contains(&verb) => out.push((verb.to_string(), 0)),
            None => {}
        }
    }
    out.extend(counts.into_iter().map(|(v, n)| (v.to_string(), n)));
    out
}

/// `Plan: 2 to create, 1 to recreate, 0 to remove.`, or the no-changes line.
fn summary_line(views: &[OpView<'_>]) -> String {
    if views.is_empty() {
        return NO_CHANGES.to_string();
    }
    let parts: Vec<String> = summary(views, &HUMAN_VERBS)
        .into_iter()
        .map(|(verb, n)| format!("{n} to {verb}"))
        .collect();
    format!("Plan: {}.", parts.join(", "))
}

/// The plan for a person: operations grouped by resource, each with its
/// causes (`field: old → new`, or a line diff when a value is long or spans
/// lines), then the summary line and the warnings. ANSI colours only when
/// `colour`.
pub fn render_human(plan: &Plan, colour: bool) -> String {
    let views = views(plan);
    let mut out = String::new();
    for (id, ops) in groups(&views) {
        let header = if colour {
            id.bold().to_string()
        } else {
            id.to_string()
        };
        let _ = writeln!(out, "{header}");
        for view in ops {
            op_lines(&mut out, view, colour);
        }
        out.push('\n');
    }
    let line = summary_line(&views);
    let _ = writeln!(
        out,
        "{}",
        if colour {
            line.bold().to_string()
        } else {
            line
        }
    );
    for warning in &plan.warnings {
        let line = format!("warning: {warning}");
        let _ = writeln!(
            out,
            "{}",
            if colour {
                line.yellow().to_string()
            } else {
                line
            }
        );
    }
    out
}

/// One operation line and its causes.
fn op_lines(out: &mut String, view: &OpView<'_>, colour: bool) {
    let sym = view.symbol();
    let head = format!("{sym} [{}] {}", view.index, view.describe());
    let head = if colour { paint(sym, &head) } else { head };
    let after = view.after();
    let after = if colour {
        after.dimmed().to_string()
    } else {
        after
    };
    let _ = writeln!(out, "{head}{after}");
    for change in &view.op.cause {
        diff::change_lines(out, change, colour);
    }
}

/// `text` in the colour of `symbol`.
fn paint(symbol: &str, text: &str) -> String {
    match symbol {
        "+" => text.green().to_string(),
        "-" => text.red().to_string(),
        "~" => text.yellow().to_string(),
        ">" => text.cyan().to_string(),
        _ => text.to_string(),
    }
}

/// The plan as the stable JSON document of `docs/plan-json.md`.
pub fn render_json(plan: &Plan) -> serde_json::Value {
    let views = views(plan);
    let summary: serde_json::Map<String, serde_json::Value> = summary(&views, &JSON_VERBS)
        .into_iter()
        .map(|(verb, n)| (verb, n.into()))
        .collect();
    let operations: Vec<serde_json::Value> = views.iter().map(op_json).collect();
    serde_json::json!({
        "schema_version": PLAN_SCHEMA_VERSION,
        "changes": !plan.ops.is_empty(),
        "summary": summary,
        "operations": operations,
        "warnings": plan.warnings,
    })
}

fn op_json(view: &OpView<'_>) -> serde_json::Value {
    let mut op = serde_json::Map::new();
    op.insert("index".into(), view.index.into());
    op.insert("id".into(), view.op.id.clone().into());
    op.insert("action".into(), view.tag.clone().into());
    op.insert("verb".into(), view.verb.clone().into());
    op.insert("name".into(), view.name.clone().into());
    op.insert("description".into(), view.describe().into());
    if let Some(service) = &view.service {
        op.insert("service".into(), service.clone().into());
    }
    let cause: Vec<serde_json::Value> = view.op.cause.iter().map(change_json).collect();
    op.insert("cause".into(), cause.into());
    op.insert("deps".into(), view.op.deps.clone().into());
    op.into()
}

fn change_json(change: &Change) -> serde_json::Value {
    serde_json::json!({ "field": change.field, "old": change.old, "new": change.new })
}

#[cfg(test)]
mod tests;
