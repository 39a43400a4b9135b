//! A plan as markdown for a pull-request comment: heading, summary, one
//! table row per operation, warnings, and the human text folded in a
//! `<details>` block.
//!
//! Invariant: nothing from the plan can break out of its table cell or of
//! the fenced block (pipes and angle brackets are escaped, the fence is
//! longer than any run of backticks in the text).

use std::fmt::Write as _;

use super::{OpView, groups, render_human, summary_line, views};
use crate::plan::{Change, Plan};

/// Values in a table cell are cut to this many characters.
const CELL_VALUE: usize = 40;

/// The plan as markdown: a heading, the summary, a table (`| | resource |
/// action | cause |`), the warnings, and the human text in a `diff` block
/// inside `<details>`.
pub fn render_markdown(plan: &Plan) -> String {
    let views = views(plan);
    let mut out = String::from("### rcompose plan\n\n");
    let _ = writeln!(out, "**{}**\n", summary_line(&views));
    if !views.is_empty() {
        out.push_str("| | resource | action | cause |\n|---|---|---|---|\n");
        for (id, ops) in groups(&views) {
            for view in ops {
                let _ = writeln!(out, "{}", row(id, view));
            }
        }
        out.push('\n');
    }
    if !plan.warnings.is_empty() {
        out.push_str("**Warnings**\n\n");
        for warning in &plan.warnings {
            let _ = writeln!(out, "- {}", escape(warning));
        }
        out.push('\n');
    }
    if !views.is_empty() {
        let text = render_human(plan, false);
        let fence = "`".repeat(longest_backtick_run(&text).max(2) + 1);
        out.push_str("<details>\n<summary>Plan details</summary>\n\n");
        let _ = write!(out, "{fence}diff\n{text}{fence}\n\n</details>\n");
    }
    out
}

fn row(id: &str, view: &OpView<'_>) -> String {
    let causes: Vec<String> = view.op.cause.iter().map(cell_change).collect();
    format!(
        "| `{}` | `{}` | {} | {} |",
        view.symbol(),
        id,
        escape(&view.describe()),
        causes.join("; ")
    )
}

fn cell_change(change: &Change) -> String {
    let show = |v: &Option<String>| match v {
        None => "(unset)".to_string(),
        Some(v) => cut(v),
    };
    format!(
        "{}: {} → {}",
        escape(&change.field),
        escape(&show(&change.old)),
        escape(&show(&change.new))
    )
}

/// `value` on one line, at most [`CELL_VALUE`] characters.
fn cut(value: &str) -> String {
    let flat = value.replace('\n', " ");
    if flat.chars().count() <= CELL_VALUE {
        return flat;
    }
    let kept: String = flat.chars().take(CELL_VALUE - 1).collect();
    format!("{kept}…")
}

/// Text that stays inside a table cell and is not read as HTML.
fn escape(text: &str) -> String {
    text.replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\n', " ")
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}
