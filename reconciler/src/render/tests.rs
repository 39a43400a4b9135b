//! Golden tests of the three renderers over plans made by the real planner
//! from stack files on the fake host.

use super::*;
use crate::plan::PlanOptions;
use crate::test_support::{STACK, host, plan_for, up};

fn fresh_plan() -> Plan {
    plan_for(&host(), STACK, &PlanOptions::default()).1
}

/// `web` changed its environment, image and (long) command; `cache` left
/// the file and is kept as an orphan.
fn change_plan() -> Plan {
    let before = STACK.replace("services:\n", "services:\n  cache:\n    image: redis:7\n");
    let before = before.replace(
        "    depends_on: [db]\n",
        "    depends_on: [db]\n    command: [nginx, -g, daemon off;, --with-a-rather-long-flag, --and-another]\n",
    );
    let host = host();
    up(&host, &before, &PlanOptions::default());
    let after = before
        .replace("  cache:\n    image: redis:7\n", "")
        .replace("FOO: a", "FOO: b")
        .replace("nginx:1.25", "nginx:1.27")
        .replace(", -g,", ", -c,");
    plan_for(&host, &after, &PlanOptions::default()).1
}

fn empty_plan_with_a_warning() -> Plan {
    let host = host();
    let with_cache = STACK.replace("services:\n", "services:\n  cache:\n    image: redis:7\n");
    up(&host, &with_cache, &PlanOptions::default());
    plan_for(&host, STACK, &PlanOptions::default()).1
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).expect("json")
}

#[test]
fn a_fresh_up_renders_networks_volumes_images_then_services() {
    insta::assert_snapshot!(render_human(&fresh_plan(), false));
}

#[test]
fn a_change_names_each_field_and_diffs_the_long_command() {
    insta::assert_snapshot!(render_human(&change_plan(), false));
}

#[test]
fn an_empty_plan_says_no_changes_and_keeps_its_warnings() {
    insta::assert_snapshot!(render_human(&empty_plan_with_a_warning(), false));
}

#[test]
fn colour_codes_appear_only_when_asked_for() {
    let plan = change_plan();
    assert!(!render_human(&plan, false).contains('\u{1b}'));
    let painted = render_human(&plan, true);
    assert!(painted.contains("\u{1b}[32m"), "no green in {painted:?}");
    assert!(!render_markdown(&plan).contains('\u{1b}'));
}

#[test]
fn the_json_of_a_fresh_up_is_the_documented_document() {
    insta::assert_snapshot!(pretty(&render_json(&fresh_plan())));
}

#[test]
fn the_json_of_a_change_carries_old_and_new_values() {
    insta::assert_snapshot!(pretty(&render_json(&change_plan())));
}

#[test]
fn the_json_of_an_empty_plan_has_no_changes_and_zero_counts() {
    let json = render_json(&empty_plan_with_a_warning());
    insta::assert_snapshot!(pretty(&json));
    assert_eq!(json["changes"], false);
}

#[test]
fn the_json_summary_counts_every_operation_once() {
    for plan in [fresh_plan(), change_plan()] {
        let json = render_json(&plan);
        let total: u64 = json["summary"]
            .as_object()
            .expect("summary")
            .values()
            .filter_map(serde_json::Value::as_u64)
            .sum();
        assert_eq!(total, plan.ops.len() as u64);
        for (i, op) in json["operations"]
            .as_array()
            .expect("ops")
            .iter()
            .enumerate()
        {
            assert_eq!(op["index"], i);
            assert_ne!(op["action"], "unknown");
        }
    }
}

#[test]
fn markdown_of_a_fresh_up_has_a_table_and_the_details() {
    insta::assert_snapshot!(render_markdown(&fresh_plan()));
}

#[test]
fn markdown_of_a_change_escapes_nothing_it_should_not() {
    insta::assert_snapshot!(render_markdown(&change_plan()));
}

#[test]
fn markdown_of_an_empty_plan_has_no_table() {
    insta::assert_snapshot!(render_markdown(&empty_plan_with_a_warning()));
}

#[test]
fn a_pipe_in_a_value_stays_inside_its_table_cell() {
    let mut plan = change_plan();
    plan.ops[0].cause = vec![Change {
        field: "command".into(),
        old: Some("a | b".into()),
        new: Some("<c>".into()),
    }];
    let md = render_markdown(&plan);
    assert!(md.contains("command: a \\| b → &lt;c&gt;"), "{md}");
}
