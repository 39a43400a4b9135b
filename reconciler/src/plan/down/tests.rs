//! Golden `down` plans on the fake host, each applied to check that the
//! host is left with nothing of the project (volumes aside without `-v`).

use super::*;
use crate::backend::{ContainerBackend, NetworkBackend, VolumeBackend, observe, project_selector};
use crate::desired::tests::load;
use crate::fake::FakeHost;
use crate::plan::PlanOptions;
use crate::render::render_human;
use crate::test_support::{STACK, apply, host, up};

/// `STACK` plus a `cache` service on the default network.
fn with_cache() -> String {
    STACK.replace("services:\n", "services:\n  cache:\n    image: redis:7\n")
}

/// A host running `yaml`.
fn running(yaml: &str) -> FakeHost {
    let host = host();
    up(&host, yaml, &PlanOptions::default());
    host
}

fn down_plan(host: &FakeHost, yaml: Option<&str>, options: &DownOptions) -> Plan {
    let desired = yaml.map(load);
    let observed = observe(host, "shop", &[]).expect("observe");
    let plan = plan_down(desired.as_ref(), &observed, options);
    for (i, op) in plan.ops.iter().enumerate() {
        assert!(
            op.deps.iter().all(|&d| d < i),
            "op {i} depends on a later op"
        );
    }
    plan
}

/// Applies a down plan, then checks that a second `down` has nothing to do.
fn apply_down(host: &FakeHost, plan: &Plan, yaml: Option<&str>, options: &DownOptions) {
    apply(host, plan).expect("apply");
    let again = down_plan(host, yaml, options);
    assert!(
        again.is_empty(),
        "not converged:\n{}",
        render_human(&again, false)
    );
}

/// Names of the project's containers, networks and volumes left.
fn left(host: &FakeHost) -> (Vec<String>, Vec<String>, Vec<String>) {
    let sel = project_selector("shop");
    let names = |v: Vec<String>| v;
    (
        names(
            host.list_containers(&sel)
                .expect("ls")
                .into_iter()
                .map(|c| c.name)
                .collect(),
        ),
        names(
            host.list_networks(&sel)
                .expect("ls")
                .into_iter()
                .map(|n| n.name)
                .collect(),
        ),
        names(
            host.list_volumes(&sel)
                .expect("ls")
                .into_iter()
                .map(|v| v.name)
                .collect(),
        ),
    )
}

fn position(plan: &Plan, id: &str, stop: bool) -> usize {
    plan.ops
        .iter()
        .position(|op| op.id == id && matches!(op.action, Action::StopContainer { .. }) == stop)
        .expect(id)
}

fn empty() -> Vec<String> {
    vec![]
}

#[test]
fn down_stops_web_before_db_and_removes_everything_but_the_volume() {
    let host = running(STACK);
    let plan = down_plan(&host, Some(STACK), &DownOptions::default());
    insta::assert_snapshot!(render_human(&plan, false));
    let (web_stop, db_stop) = (
        position(&plan, "service:web:1", true),
        position(&plan, "service:db:1", true),
    );
    assert!(plan.ops[db_stop].deps.contains(&web_stop));
    apply_down(&host, &plan, Some(STACK), &DownOptions::default());
    assert_eq!(
        left(&host),
        (empty(), empty(), vec!["shop_data".to_string()])
    );
}

#[test]
fn down_with_volumes_removes_a_volume_after_the_containers_that_mount_it() {
    let host = running(STACK);
    let options = DownOptions {
        volumes: true,
        ..DownOptions::default()
    };
    let plan = down_plan(&host, Some(STACK), &options);
    insta::assert_snapshot!(render_human(&plan, false));
    apply_down(&host, &plan, Some(STACK), &options);
    assert_eq!(left(&host), (empty(), empty(), empty()));
}

#[test]
fn down_without_a_stack_file_stops_every_container_at_once() {
    let host = running(STACK);
    let options = DownOptions {
        volumes: true,
        ..DownOptions::default()
    };
    let plan = down_plan(&host, None, &options);
    insta::assert_snapshot!(render_human(&plan, false));
    assert!(
        plan.ops
            .iter()
            .filter(|op| matches!(op.action, Action::StopContainer { .. }))
            .all(|op| op.deps.is_empty())
    );
    apply_down(&host, &plan, None, &options);
    assert_eq!(left(&host), (empty(), empty(), empty()));
}

#[test]
fn an_orphan_and_its_network_are_kept_without_remove_orphans() {
    let host = running(&with_cache());
    let plan = down_plan(&host, Some(STACK), &DownOptions::default());
    insta::assert_snapshot!(render_human(&plan, false));
    apply_down(&host, &plan, Some(STACK), &DownOptions::default());
    let (containers, networks, _) = left(&host);
    assert_eq!(containers, ["shop-cache-1"]);
    assert_eq!(networks, ["shop_default"]);
}

#[test]
fn an_orphan_is_removed_with_remove_orphans() {
    let host = running(&with_cache());
    let options = DownOptions {
        remove_orphans: true,
        ..DownOptions::default()
    };
    let plan = down_plan(&host, Some(STACK), &options);
    insta::assert_snapshot!(render_human(&plan, false));
    apply_down(&host, &plan, Some(STACK), &options);
    assert_eq!(
        left(&host),
        (empty(), empty(), vec!["shop_data".to_string()])
    );
}

#[test]
fn down_of_one_service_keeps_the_others_and_the_networks_they_use() {
    let host = running(STACK);
    let options = DownOptions {
        volumes: true,
        services: vec!["web".into()],
        ..DownOptions::default()
    };
    let plan = down_plan(&host, Some(STACK), &options);
    insta::assert_snapshot!(render_human(&plan, false));
    apply_down(&host, &plan, Some(STACK), &options);
    assert_eq!(
        left(&host),
        (
            vec!["shop-db-1".to_string()],
            vec!["shop_default".to_string()],
            vec!["shop_data".to_string()]
        )
    );
}

#[test]
fn a_stopped_container_is_removed_without_a_stop() {
    let host = running(STACK);
    host.stop_container("shop-web-1", None).expect("stop");
    let plan = down_plan(&host, Some(STACK), &DownOptions::default());
    assert!(plan.ops.iter().all(|op| {
        !(op.id == "service:web:1" && matches!(op.action, Action::StopContainer { .. }))
    }));
    apply_down(&host, &plan, Some(STACK), &DownOptions::default());
    assert_eq!(left(&host).0, empty());
}

#[test]
fn a_dependency_waits_for_the_dependents_of_a_dependent_that_is_already_stopped() {
    let yaml = "
services:
  c:
    image: redis:7
  b:
    image: redis:7
    depends_on: [c]
  a:
    image: redis:7
    depends_on: [b]
";
    let host = running(yaml);
    host.stop_container("shop-b-1", None).expect("stop");
    let plan = down_plan(&host, Some(yaml), &DownOptions::default());
    let (a_stop, c_stop) = (
        position(&plan, "service:a:1", true),
        position(&plan, "service:c:1", true),
    );
    assert_eq!(plan.ops[c_stop].deps, [a_stop]);
    apply_down(&host, &plan, Some(yaml), &DownOptions::default());
    assert_eq!(left(&host), (empty(), empty(), empty()));
}

#[test]
fn down_of_an_empty_project_is_an_empty_plan() {
    let plan = down_plan(&host(), Some(STACK), &DownOptions::default());
    assert!(plan.is_empty());
    assert!(plan.warnings.is_empty());
}

#[test]
fn every_down_operation_says_down() {
    let host = running(STACK);
    let plan = down_plan(&host, None, &DownOptions::default());
    assert!(
        plan.ops
            .iter()
            .all(|op| op.cause.iter().all(|c| c.field == "down"))
    );
    assert!(
        host.list_volumes(&project_selector("shop"))
            .expect("ls")
            .len()
            == 1
    );
}

#[test]
fn a_volume_waits_for_a_container_made_from_another_version_of_its_service() {
    let host = running(STACK);
    // The file no longer mounts `data` into db, but the running db still does.
    let edited = STACK.replace("    volumes: [data:/var/lib/postgresql/data]\n", "");
    let options = DownOptions {
        volumes: true,
        ..DownOptions::default()
    };
    let plan = down_plan(&host, Some(&edited), &options);
    let index = |wanted: &dyn Fn(&Action) -> bool| {
        plan.ops.iter().position(|op| wanted(&op.action)).unwrap()
    };
    let db = index(&|a| matches!(a, Action::RemoveContainer { name, .. } if name == "shop-db-1"));
    let volume = index(&|a| matches!(a, Action::RemoveVolume { .. }));
    assert_eq!(plan.ops[volume].deps, [db]);
    apply_down(&host, &plan, Some(&edited), &options);
    assert_eq!(left(&host), (empty(), empty(), empty()));
}
