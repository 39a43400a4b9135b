//! Golden scenarios of `depends_on` conditions, jobs, `restart: true` and
//! named services, each applied with the real executor on the fake host
//! and checked for convergence.

use super::*;
use crate::apply::Event;
use crate::fake::{Call, ContainerOutcome};

/// `web` waits for `api` to be healthy, which waits for `db` to be healthy.
pub(crate) const CHAIN: &str = "
services:
  db:
    image: postgres:16
    healthcheck:
      test: [CMD, pg_isready]
  api:
    image: nginx:1.25
    healthcheck:
      test: [CMD, curl, -f, localhost]
    depends_on:
      db:
        condition: service_healthy
  web:
    image: nginx:1.27
    depends_on:
      api:
        condition: service_healthy
";

/// `migrate` is a job that `web` waits for; both need `db` started.
pub(crate) const JOB: &str = "
services:
  db:
    image: postgres:16
  migrate:
    image: nginx:1.25
    depends_on: [db]
  web:
    image: nginx:1.27
    depends_on:
      db:
        condition: service_started
      migrate:
        condition: service_completed_successfully
";

/// `web` restarts when `db` changes; `worker` does not ask to.
const RESTART: &str = "
services:
  db:
    image: postgres:16
    environment:
      V: '1'
  web:
    image: nginx:1.25
    depends_on:
      db:
        condition: service_started
        restart: true
  worker:
    image: nginx:1.25
    depends_on: [db]
";

/// `web` would like `cache` healthy, but does not require it.
const OPTIONAL: &str = "
services:
  cache:
    image: redis:7
    healthcheck:
      test: [CMD, redis-cli, ping]
  web:
    image: nginx:1.25
    depends_on:
      cache:
        condition: service_healthy
        required: false
";

/// Three services, `web` depending on `db`, `cache` on its own.
const THREE: &str = "
services:
  db:
    image: postgres:16
  cache:
    image: redis:7
  web:
    image: nginx:1.25
    depends_on: [db]
";

fn position(calls: &[Call], wanted: &Call) -> usize {
    calls
        .iter()
        .position(|c| c == wanted)
        .unwrap_or_else(|| panic!("no call {wanted:?} in {calls:?}"))
}

/// Index of the `n`th (1-based) inspection of `name`.
fn nth_inspection(calls: &[Call], name: &str, n: usize) -> usize {
    let inspect = Call::InspectContainer(name.into());
    calls
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == inspect)
        .nth(n - 1)
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("fewer than {n} inspections of {name}"))
}

#[test]
fn a_chain_of_service_healthy_dependencies_waits_for_each_link_in_turn() {
    let host = host();
    host.on_start_after("db", ContainerOutcome::Healthy, 2);
    host.on_start_after("api", ContainerOutcome::Healthy, 1);
    let plan = up(&host, CHAIN, &defaults());
    insta::assert_snapshot!(plan.render_text());
    let calls = host.calls();
    // db reports healthy at its 3rd inspection, api at its 2nd.
    let db_healthy = nth_inspection(&calls, "shop-db-1", 3);
    assert!(position(&calls, &Call::CreateContainer("shop-api-1".into())) > db_healthy);
    let api_healthy = nth_inspection(&calls, "shop-api-1", 2);
    assert!(position(&calls, &Call::CreateContainer("shop-web-1".into())) > api_healthy);
}

#[test]
fn a_job_awaited_with_service_completed_successfully_runs_before_its_dependent() {
    let host = host();
    host.on_start_after("migrate", ContainerOutcome::Exit(0), 2);
    let plan = up(&host, JOB, &defaults());
    insta::assert_snapshot!(plan.render_text());
    let calls = host.calls();
    let migrate_done = nth_inspection(&calls, "shop-migrate-1", 3);
    assert!(position(&calls, &Call::CreateContainer("shop-web-1".into())) > migrate_done);
    let migrate = host.container("shop-migrate-1").expect("migrate");
    assert_eq!(migrate.exit_code, Some(0));
}

#[test]
fn a_job_that_already_completed_gives_an_empty_plan() {
    let host = host();
    host.on_start("migrate", ContainerOutcome::Exit(0));
    up(&host, JOB, &defaults());
    let (desired, plan) = plan_for(&host, JOB, &defaults());
    assert!(desired.service("migrate").expect("migrate").job);
    insta::assert_snapshot!(plan.render_text());
    assert!(plan.is_empty());
}

#[test]
fn a_job_that_failed_is_started_again() {
    let host = host();
    host.on_start("migrate", ContainerOutcome::Exit(0));
    up(&host, JOB, &defaults());
    host.set_exit("shop-migrate-1", 3);
    let plan = up(&host, JOB, &defaults());
    insta::assert_snapshot!(plan.render_text());
}

#[test]
fn a_dependent_with_restart_true_is_restarted_when_its_dependency_is_recreated() {
    let host = host();
    up(&host, RESTART, &defaults());
    let plan = up(&host, &RESTART.replace("V: '1'", "V: '2'"), &defaults());
    insta::assert_snapshot!(plan.render_text());
    assert_eq!(restarts(&plan), ["service:web:1"]);
}

#[test]
fn an_optional_dependency_that_fails_its_wait_gives_a_warning_and_the_dependent_starts() {
    let host = host();
    host.on_start("cache", ContainerOutcome::Unhealthy);
    let (_, plan) = plan_for(&host, OPTIONAL, &defaults());
    insta::assert_snapshot!("optional_dependency_plan", plan.render_text());
    let events = Mutex::new(Vec::new());
    let report = apply(&host, &plan, &fast(), &|e: &Event| {
        events.lock().expect("events").push(e.clone());
    });
    assert!(report.ok());
    insta::assert_snapshot!("optional_dependency_report", report.render_text());
    let events = events.into_inner().expect("events");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Warning { message, .. } if message.contains("unhealthy")))
    );
    let web = host.container("shop-web-1").expect("web");
    assert_eq!(web.status, crate::backend::ContainerStatus::Running);
    assert_converged(&host, OPTIONAL, &defaults());
}

#[test]
fn a_named_service_brings_its_dependencies_along() {
    let host = host();
    let options = PlanOptions {
        services: vec!["web".into()],
        ..defaults()
    };
    let plan = up(&host, THREE, &options);
    insta::assert_snapshot!(plan.render_text());
    assert!(host.container("shop-cache-1").is_none());
}

#[test]
fn a_named_service_with_no_deps_is_planned_alone_and_waits_for_nothing() {
    let host = host();
    let options = PlanOptions {
        services: vec!["web".into()],
        no_deps: true,
        ..defaults()
    };
    let plan = up(&host, THREE, &options);
    insta::assert_snapshot!(plan.render_text());
    assert!(host.container("shop-db-1").is_none());
    assert!(host.container("shop-cache-1").is_none());
}

#[test]
fn services_left_out_by_name_are_never_taken_for_orphans() {
    let host = host();
    up(&host, THREE, &defaults());
    host.stop_container("shop-cache-1", None).expect("stop");
    let options = PlanOptions {
        services: vec!["web".into()],
        no_deps: true,
        remove_orphans: true,
        ..defaults()
    };
    let (_, plan) = plan_for(&host, THREE, &options);
    assert!(plan.is_empty(), "{}", plan.render_text());
    assert!(plan.warnings.is_empty());
}

#[test]
fn a_name_not_in_the_file_is_a_warning() {
    let options = PlanOptions {
        services: vec!["nope".into()],
        ..defaults()
    };
    let (_, plan) = plan_for(&host(), THREE, &options);
    assert!(plan.is_empty());
    assert_eq!(
        plan.warnings,
        ["service nope is not in the stack file; nothing to do for it"]
    );
}

#[test]
fn a_converged_host_plans_no_waits() {
    let host = host();
    host.on_start("db", ContainerOutcome::Healthy);
    host.on_start("api", ContainerOutcome::Healthy);
    up(&host, CHAIN, &defaults());
    let (_, plan) = plan_for(&host, CHAIN, &defaults());
    assert!(plan.is_empty(), "{}", plan.render_text());
}

#[test]
fn a_wait_follows_the_final_ops_of_its_dependency_and_precedes_the_dependent() {
    let (_, plan) = plan_for(&host(), JOB, &defaults());
    for (i, op) in plan.ops.iter().enumerate() {
        assert!(
            op.deps.iter().all(|&d| d < i),
            "op {i} depends on a later op"
        );
        if let Action::WaitFor { dependency, .. } = &op.action {
            let starts: Vec<usize> = (0..i)
                .filter(|&j| {
                    plan.ops[j].action.service() == Some(dependency.as_str())
                        && matches!(plan.ops[j].action, Action::StartContainer { .. })
                })
                .collect();
            assert_eq!(op.deps, starts, "wait {i}");
        }
    }
}
