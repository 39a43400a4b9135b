//! Scenario tests of the planner on the [`FakeHost`]: golden plan text, and
//! convergence (after applying a plan with the real executor, a fresh plan
//! is empty and applying it changes nothing). The helpers are shared with
//! the executor's tests.

use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::apply::{ApplyOptions, Report, apply};
use crate::backend::{ContainerBackend, Labels, ObservedContainer, container_labels, observe};
use crate::desired::tests::load;
use crate::fake::FakeHost;

pub(crate) mod depends;
mod files;
mod recreate;
mod unhealthy;

pub(crate) use crate::test_support::{STACK, host, plan_for};

/// One service on the external network `corp`.
pub(crate) const WEB_ON_EXTERNAL_CORP: &str = "
services:
  web:
    image: nginx:1.25
    networks: [corp]
networks:
  corp:
    external: true
";

/// The ops of `plan` that restart a container, by resource id.
pub(crate) fn restarts(plan: &Plan) -> Vec<&str> {
    plan.ops
        .iter()
        .filter(|op| matches!(op.action, Action::RestartContainer { .. }))
        .map(|op| op.id.as_str())
        .collect()
}

/// Executor options for tests: a 1 ms poll, waits bounded so that a broken
/// test fails instead of hanging.
pub(crate) fn fast() -> ApplyOptions {
    ApplyOptions {
        poll: Duration::from_millis(1),
        wait_timeout: Some(Duration::from_secs(10)),
        ..ApplyOptions::default()
    }
}

/// Applies `plan` with the real executor and no event sink.
pub(crate) fn run(host: &FakeHost, plan: &Plan) -> Report {
    apply(host, plan, &fast(), &|_| {})
}

/// Plans and applies `yaml`, then checks that the host converged.
pub(crate) fn up(host: &FakeHost, yaml: &str, options: &PlanOptions) -> Plan {
    let (_, plan) = plan_for(host, yaml, options);
    let report = run(host, &plan);
    assert!(
        report.ok(),
        "apply failed:\n{}\n{}",
        plan.render_text(),
        report.render_text()
    );
    assert_converged(host, yaml, options);
    plan
}

/// A fresh plan is empty, and applying it makes no mutating call.
pub(crate) fn assert_converged(host: &FakeHost, yaml: &str, options: &PlanOptions) {
    let (_, again) = plan_for(host, yaml, options);
    assert!(again.is_empty(), "not converged:\n{}", again.render_text());
    let before = host.mutating_calls();
    assert!(run(host, &again).ok());
    assert_eq!(
        host.mutating_calls(),
        before,
        "an empty plan changed the host"
    );
}

fn defaults() -> PlanOptions {
    PlanOptions::default()
}

fn with_scale(scale: u32) -> String {
    STACK.replace(
        "    image: nginx:1.25\n",
        &format!("    image: nginx:1.25\n    scale: {scale}\n"),
    )
}

#[test]
fn fresh_up_creates_networks_and_volumes_then_pulls_then_starts_db_before_web() {
    let plan = up(&host(), STACK, &defaults());
    insta::assert_snapshot!(plan.render_text());
}

#[test]
fn a_converged_host_gives_an_empty_plan_and_a_second_apply_changes_nothing() {
    let host = host();
    up(&host, STACK, &defaults());
    let before = host.mutating_calls();
    let (_, plan) = plan_for(&host, STACK, &defaults());
    assert!(plan.is_empty());
    assert_eq!(plan.render_text(), "no changes\n");
    assert_eq!(run(&host, &plan), Report::default());
    assert_eq!(host.mutating_calls(), before);
}

#[test]
fn an_environment_change_recreates_only_the_replicas_of_that_service() {
    let host = host();
    up(&host, &with_scale(2), &defaults());
    let changed = with_scale(2).replace("FOO: a", "FOO: b");
    let plan = up(&host, &changed, &defaults());
    insta::assert_snapshot!(plan.render_text());
    assert!(plan.ops.iter().all(|op| op.id.starts_with("service:web")));
}

#[test]
fn an_image_change_pulls_the_new_image_and_names_the_image_field() {
    let host = host();
    up(&host, STACK, &defaults());
    let plan = up(
        &host,
        &STACK.replace("nginx:1.25", "nginx:1.27"),
        &defaults(),
    );
    insta::assert_snapshot!(plan.render_text());
}

#[test]
fn scaling_from_3_to_1_removes_replicas_3_then_2() {
    let host = host();
    up(&host, &with_scale(3), &defaults());
    let plan = up(&host, &with_scale(1), &defaults());
    insta::assert_snapshot!(plan.render_text());
}

#[test]
fn scaling_from_1_to_3_creates_replicas_2_and_3_only() {
    let host = host();
    up(&host, &with_scale(1), &defaults());
    let plan = up(&host, &with_scale(3), &defaults());
    insta::assert_snapshot!(plan.render_text());
}

#[test]
fn a_removed_service_is_kept_as_an_orphan_without_remove_orphans() {
    let host = host();
    let with_cache =
        format!("{STACK}\n").replace("services:\n", "services:\n  cache:\n    image: redis:7\n");
    up(&host, &with_cache, &defaults());
    let (_, plan) = plan_for(&host, STACK, &defaults());
    insta::assert_snapshot!(plan.render_text());
    assert!(plan.is_empty());
}

#[test]
fn a_removed_service_is_stopped_and_removed_with_remove_orphans() {
    let host = host();
    let with_cache = STACK.replace("services:\n", "services:\n  cache:\n    image: redis:7\n");
    up(&host, &with_cache, &defaults());
    let options = PlanOptions {
        remove_orphans: true,
        ..defaults()
    };
    let plan = up(&host, STACK, &options);
    insta::assert_snapshot!(plan.render_text());
    assert!(host.container("shop-cache-1").is_none());
}

#[test]
fn an_external_network_is_never_created() {
    let yaml = WEB_ON_EXTERNAL_CORP;
    let host = host();
    host.add_network(crate::backend::ObservedNetwork {
        name: "corp".into(),
        labels: Labels::new(),
        config: Default::default(),
        broken: None,
    });
    let plan = up(&host, yaml, &defaults());
    insta::assert_snapshot!(plan.render_text());
    assert!(
        !plan
            .ops
            .iter()
            .any(|op| matches!(op.action, Action::CreateNetwork(_)))
    );
}

#[test]
fn every_op_of_web_waits_for_the_start_of_db() {
    let host = host();
    let (_, plan) = plan_for(&host, STACK, &defaults());
    let db_start = plan
        .ops
        .iter()
        .position(|op| {
            op.id == "service:db:1" && matches!(op.action, Action::StartContainer { .. })
        })
        .expect("db start");
    let wait = plan
        .ops
        .iter()
        .position(|op| matches!(op.action, Action::WaitFor { .. }))
        .expect("web waits for db");
    assert_eq!(plan.ops[wait].id, "service:web");
    assert_eq!(plan.ops[wait].deps, [db_start]);
    let web_create = plan
        .ops
        .iter()
        .find(|op| op.id == "service:web:1" && matches!(op.action, Action::CreateContainer(_)))
        .expect("web create");
    assert!(web_create.deps.contains(&wait));
    for (i, op) in plan.ops.iter().enumerate() {
        assert!(
            op.deps.iter().all(|&d| d < i),
            "op {i} depends on a later op"
        );
    }
}

#[test]
fn a_db_change_makes_the_web_start_wait_for_the_db_recreate() {
    let host = host();
    up(&host, STACK, &defaults());
    host.stop_container("shop-web-1", None).expect("stop");
    let changed = STACK.replace(
        "    image: postgres:16\n",
        "    image: postgres:16\n    user: pg\n",
    );
    let plan = up(&host, &changed, &defaults());
    insta::assert_snapshot!(plan.render_text());
}

#[test]
fn a_stopped_replica_is_started_not_recreated() {
    let host = host();
    up(&host, STACK, &defaults());
    host.stop_container("shop-db-1", None).expect("stop");
    let plan = up(&host, STACK, &defaults());
    insta::assert_snapshot!(plan.render_text());
}

#[test]
fn force_recreate_recreates_every_replica_and_no_recreate_keeps_changed_ones() {
    let host = host();
    up(&host, STACK, &defaults());
    let forced = PlanOptions {
        force_recreate: true,
        ..defaults()
    };
    let (_, plan) = plan_for(&host, STACK, &forced);
    let recreates = plan
        .ops
        .iter()
        .filter(|op| matches!(op.action, Action::RecreateContainer(_)));
    assert_eq!(recreates.count(), 2);
    assert!(plan.ops.iter().all(|op| matches!(
        op.action,
        Action::RecreateContainer(_) | Action::WaitFor { .. }
    )));
    let keep = PlanOptions {
        no_recreate: true,
        ..defaults()
    };
    let (_, plan) = plan_for(&host, &STACK.replace("FOO: a", "FOO: b"), &keep);
    assert!(plan.is_empty(), "{}", plan.render_text());
}

#[test]
fn a_host_that_kept_only_the_hash_is_told_the_hashes() {
    let host = host();
    host.add_image("nginx:1.25", "sha256:ng125");
    host.add_network(crate::backend::ObservedNetwork {
        name: "shop_default".into(),
        labels: crate::backend::project_selector("shop"),
        config: Default::default(),
        broken: None,
    });
    host.add_container(ObservedContainer {
        name: "shop-web-1".into(),
        service: "web".into(),
        replica: 1,
        config_hash: "0123456789abcdef0123".into(),
        image_digest: Some("sha256:ng125".into()),
        status: crate::backend::ContainerStatus::Running,
        health: None,
        exit_code: None,
        networks: vec!["shop_default".into()],
        labels: container_labels("shop", "web", 1, "0123456789abcdef0123"),
        config: None,
    });
    let (desired, plan) = plan_for(
        &host,
        "services:\n  web:\n    image: nginx:1.25\n",
        &defaults(),
    );
    let cause = &plan.ops[0].cause[0];
    assert_eq!(cause.field, "config hash");
    assert_eq!(cause.old.as_deref(), Some("0123456789ab…"));
    assert_eq!(
        cause.new,
        Some(format!("{}…", &desired.services[0].config_hash[..12]))
    );
}

#[test]
fn a_new_local_digest_of_the_same_reference_recreates_its_containers() {
    let host = host();
    up(&host, STACK, &defaults());
    host.add_image("nginx:1.25", "sha256:ng125-rebuilt");
    let plan = up(&host, STACK, &defaults());
    insta::assert_snapshot!(plan.render_text());
}

#[test]
fn pull_always_pulls_present_images_again() {
    let host = host();
    up(&host, STACK, &defaults());
    let always = PlanOptions {
        pull: PullPolicy::Always,
        ..defaults()
    };
    let (_, plan) = plan_for(&host, STACK, &always);
    let pulls = plan
        .ops
        .iter()
        .filter(|op| matches!(op.action, Action::PullImage { .. }));
    assert_eq!(pulls.count(), 2);
    let (_, plan) = plan_for(
        &host,
        STACK,
        &PlanOptions {
            pull: PullPolicy::Never,
            ..defaults()
        },
    );
    assert!(plan.is_empty());
}

#[test]
fn a_failure_on_any_operation_is_converged_by_the_next_up() {
    let fresh = host();
    up(&fresh, STACK, &defaults());
    for n in 1..=fresh.mutating_calls().len() {
        let host = host();
        host.fail_on_call(n);
        let (_, plan) = plan_for(&host, STACK, &defaults());
        assert!(!run(&host, &plan).ok(), "op {n} should fail");
        up(&host, STACK, &defaults());
    }
}

#[test]
fn containers_and_networks_without_our_labels_are_never_touched() {
    let host = host();
    host.add_network(crate::backend::ObservedNetwork {
        name: "shop_old".into(),
        labels: Labels::new(),
        config: Default::default(),
        broken: None,
    });
    let mut stranger = ObservedContainer {
        name: "shop-web-9".into(),
        service: "web".into(),
        replica: 9,
        config_hash: String::new(),
        image_digest: None,
        status: crate::backend::ContainerStatus::Running,
        health: None,
        exit_code: None,
        networks: vec![],
        labels: Labels::new(),
        config: None,
    };
    stranger.labels.insert("owner".into(), "someone".into());
    host.add_container(stranger);
    let options = PlanOptions {
        remove_orphans: true,
        ..defaults()
    };
    let plan = up(&host, STACK, &options);
    assert!(
        plan.ops
            .iter()
            .all(|op| !op.id.ends_with(":9") && op.id != "network:shop_old")
    );
    assert!(host.container("shop-web-9").is_some());
}

#[test]
fn an_orphan_network_is_removed_after_the_orphan_containers_with_remove_orphans() {
    let host = host();
    let extra = STACK
        .replace(
            "networks:\n  front: {}\n",
            "networks:\n  front: {}\n  back: {}\n",
        )
        .replace("    image: redis:7\n", "")
        .replace(
            "services:\n",
            "services:\n  cache:\n    image: redis:7\n    networks: [back]\n",
        );
    up(&host, &extra, &defaults());
    let options = PlanOptions {
        remove_orphans: true,
        ..defaults()
    };
    let plan = up(&host, STACK, &options);
    insta::assert_snapshot!(plan.render_text());
}

#[test]
fn the_plan_serializes_to_json_and_back() {
    let (_, plan) = plan_for(&host(), STACK, &defaults());
    let json = serde_json::to_string(&plan).expect("serialize");
    let back: Plan = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, plan);
}

#[test]
fn a_replica_attached_to_other_networks_than_the_file_says_is_recreated() {
    let host = host();
    up(&host, STACK, &defaults());
    let mut web = host.container("shop-web-1").expect("web");
    web.networks = vec!["shop_default".into()];
    host.add_container(web);
    let plan = up(&host, STACK, &defaults());
    insta::assert_snapshot!(plan.render_text());
}

#[test]
fn container_name_and_deploy_replicas_are_honoured() {
    let yaml = "
services:
  web:
    image: nginx:1.25
    container_name: frontdoor
  worker:
    image: nginx:1.25
    deploy:
      replicas: 2
";
    let plan = up(&host(), yaml, &defaults());
    insta::assert_snapshot!(plan.render_text());
}
