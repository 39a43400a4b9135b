//! One cause as text: `field: old → new` on one line, or a line diff
//! (rendered with `similar`) when a value spans lines or is long.
//!
//! Invariant: the first column of every line holds `+`, `-` or a space, so
//! the text reads as a diff where one is expected (a markdown `diff` block).

use std::borrow::Cow;
use std::fmt::Write as _;

use owo_colors::OwoColorize;
use similar::{ChangeTag, TextDiff};

use crate::plan::Change;

/// Values longer than this (in characters) are shown as a line diff.
const LONG: usize = 60;

/// Indent of a cause line, under its operation.
const CAUSE_INDENT: &str = "      ";

/// Indent of a diff line after its one-column sign.
const DIFF_INDENT: &str = "       ";

/// Lines of unchanged context kept around each changed hunk.
const CONTEXT: usize = 3;

/// Appends `change` to `out`.
pub(super) fn change_lines(out: &mut String, change: &Change, colour: bool) {
    let old = change.old.as_deref().map(expand);
    let new = change.new.as_deref().map(expand);
    if !is_long(old.as_deref()) && !is_long(new.as_deref()) {
        let _ = writeln!(out, "{CAUSE_INDENT}{}", one_line(change, colour));
        return;
    }
    let header = match (&old, &new) {
        (None, _) => format!("{}: (unset) →", change.field),
        (_, None) => format!("{}: → (unset)", change.field),
        _ => format!("{}:", change.field),
    };
    let _ = writeln!(out, "{CAUSE_INDENT}{header}");
    line_diff(
        out,
        old.as_deref().unwrap_or_default(),
        new.as_deref().unwrap_or_default(),
        colour,
    );
}

fn is_long(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.contains('\n') || v.chars().count() > LONG)
}

/// A long JSON array or object pretty-printed, so that a line diff shows the
/// element that changed; anything else as is.
fn expand(value: &str) -> Cow<'_, str> {
    if value.chars().count() <= LONG || !(value.starts_with('[') || value.starts_with('{')) {
        return Cow::Borrowed(value);
    }
    serde_json::from_str::<serde_json::Value>(value)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .map_or(Cow::Borrowed(value), Cow::Owned)
}

/// `field: old → new`, the old value red and the new one green in colour.
fn one_line(change: &Change, colour: bool) -> String {
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(unset)".into());
    let (old, new) = (show(&change.old), show(&change.new));
    if colour {
        format!("{}: {} → {}", change.field, old.red(), new.green())
    } else {
        format!("{}: {old} → {new}", change.field)
    }
}

/// Hunks of a line diff of `old` and `new` with [`CONTEXT`] lines around
/// each, `…` for the lines left out; in colour, the changed words are underlined.
fn line_diff(out: &mut String, old: &str, new: &str, colour: bool) {
    let (old, new) = (with_newline(old), with_newline(new));
    let diff = TextDiff::from_lines(old.as_ref(), new.as_ref());
    let groups = diff.grouped_ops(CONTEXT);
    for group in &groups {
        if group.first().is_some_and(|op| op.old_range().start > 0) {
            let _ = writeln!(out, " {DIFF_INDENT}…");
        }
        for op in group {
            for change in diff.iter_inline_changes(op) {
                let mut line = String::new();
                for (emphasized, text) in change.iter_strings_lossy() {
                    let text = text.trim_end_matches('\n');
                    line.push_str(&styled(change.tag(), emphasized, text, colour));
                }
                let sign = change.tag().to_string();
                let sign = styled(change.tag(), false, &sign, colour);
                let _ = writeln!(out, "{sign}{DIFF_INDENT}{line}");
            }
        }
    }
    let shown = groups
        .last()
        .and_then(|g| g.last())
        .map_or(0, |op| op.old_range().end);
    if shown < diff.old_len() {
        let _ = writeln!(out, " {DIFF_INDENT}…");
    }
}

fn with_newline(text: &str) -> Cow<'_, str> {
    if text.is_empty() || text.ends_with('\n') {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(format!("{text}\n"))
    }
}

fn styled(tag: ChangeTag, emphasized: bool, text: &str, colour: bool) -> String {
    match (colour, tag, emphasized) {
        (false, ..) | (true, ChangeTag::Equal, _) => text.to_string(),
        (true, ChangeTag::Delete, false) => text.red().to_string(),
        (true, ChangeTag::Delete, true) => text.red().underline().to_string(),
        (true, ChangeTag::Insert, false) => text.green().to_string(),
        (true, ChangeTag::Insert, true) => text.green().underline().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(old: Option<&str>, new: Option<&str>) -> String {
        let change = Change {
            field: "f".into(),
            old: old.map(str::to_string),
            new: new.map(str::to_string),
        };
        let mut out = String::new();
        change_lines(&mut out, &change, false);
        out
    }

    #[test]
    fn a_short_change_fits_on_one_line() {
        assert_eq!(render(Some("a"), None), "      f: a → (unset)\n");
    }

    #[test]
    fn a_multi_line_value_is_shown_as_a_line_diff_with_context() {
        let old: String = (1..=12).map(|n| format!("{n}\n")).collect();
        let new = old.replacen("2\n", "two\n", 1).replace("11\n", "eleven\n");
        let expected = "      f:\n        1\n-       2\n+       two\n        3\n        4\n        5\n\
                        \u{20}       …\n        8\n        9\n        10\n-       11\n+       eleven\n        12\n";
        assert_eq!(render(Some(&old), Some(&new)), expected);
    }

    #[test]
    fn a_long_json_array_is_pretty_printed_before_the_diff() {
        let old = r#"["nginx","-g","daemon off;","--with-a-rather-long-flag","--and-another"]"#;
        let new = old.replace("-g", "-c");
        let out = render(Some(old), Some(&new));
        assert!(
            out.contains("-         \"-g\",\n+         \"-c\",\n"),
            "{out}"
        );
    }

    #[test]
    fn colour_underlines_the_changed_words_only_when_asked() {
        let change = Change {
            field: "f".into(),
            old: Some("x".repeat(70)),
            new: Some(format!("{} y", "x".repeat(70))),
        };
        let mut plain = String::new();
        change_lines(&mut plain, &change, false);
        assert!(!plain.contains('\u{1b}'));
        let mut painted = String::new();
        change_lines(&mut painted, &change, true);
        assert!(painted.contains("\u{1b}[4m"), "{painted:?}");
    }
}
