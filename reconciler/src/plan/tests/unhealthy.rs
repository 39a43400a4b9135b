//! Golden scenarios of `x-rcompose: {restart_on_unhealthy: true}`: an
//! unhealthy running container of a marked service is restarted, its
//! `restart: true` dependents after it; without the marker, or in the
//! start period, nothing is planned. Each is applied with the real
//! executor on the fake host, whose restarted containers report healthy,
//! and checked for convergence.

use super::*;
use crate::backend::Health;
use crate::fake::{Call, ContainerOutcome};

/// `web` has a healthcheck and asks to be restarted when unhealthy.
const MARKED: &str = "
services:
  web:
    image: nginx:1.25
    healthcheck:
      test: [CMD, curl, -f, localhost]
    x-rcompose:
      restart_on_unhealthy: true
";

/// `db` asks to be restarted when unhealthy; `web` restarts with it,
/// `worker` does not ask to.
const CASCADE: &str = "
services:
  db:
    image: postgres:16
    healthcheck:
      test: [CMD, pg_isready]
    x-rcompose:
      restart_on_unhealthy: true
  web:
    image: nginx:1.25
    depends_on:
      db:
        condition: service_healthy
        restart: true
  worker:
    image: nginx:1.25
    depends_on:
      db:
        condition: service_healthy
";

/// `MARKED` without the marker.
fn unmarked() -> String {
    MARKED.replace("    x-rcompose:\n      restart_on_unhealthy: true\n", "")
}

fn last_position(calls: &[Call], wanted: &Call) -> usize {
    calls
        .iter()
        .rposition(|c| c == wanted)
        .unwrap_or_else(|| panic!("no call {wanted:?} in {calls:?}"))
}

#[test]
fn an_unhealthy_container_of_a_service_marked_restart_on_unhealthy_is_restarted() {
    let host = host();
    host.on_start("web", ContainerOutcome::Healthy);
    up(&host, MARKED, &defaults());
    host.set_health("shop-web-1", Health::Unhealthy);
    let before = host.mutating_calls().len();
    let plan = up(&host, MARKED, &defaults());
    insta::assert_snapshot!(plan.render_text());
    assert_eq!(restarts(&plan), ["service:web:1"]);
    assert_eq!(
        host.mutating_calls()[before..],
        [
            Call::StopContainer("shop-web-1".into()),
            Call::StartContainer("shop-web-1".into())
        ]
    );
    let web = host.container("shop-web-1").expect("web");
    assert_eq!(web.health, Some(Health::Healthy));
}

#[test]
fn an_unhealthy_container_without_the_marker_is_left_alone() {
    let host = host();
    host.on_start("web", ContainerOutcome::Healthy);
    let yaml = unmarked();
    up(&host, &yaml, &defaults());
    host.set_health("shop-web-1", Health::Unhealthy);
    let (desired, plan) = plan_for(&host, &yaml, &defaults());
    assert!(!desired.service("web").expect("web").restart_on_unhealthy);
    insta::assert_snapshot!(plan.render_text());
    assert!(plan.is_empty());
    assert_converged(&host, &yaml, &defaults());
    let web = host.container("shop-web-1").expect("web");
    assert_eq!(web.health, Some(Health::Unhealthy));
}

#[test]
fn a_dependent_with_restart_true_is_restarted_after_its_unhealthy_dependency() {
    let host = host();
    host.on_start_after("db", ContainerOutcome::Healthy, 1);
    up(&host, CASCADE, &defaults());
    host.set_health("shop-db-1", Health::Unhealthy);
    let plan = up(&host, CASCADE, &defaults());
    insta::assert_snapshot!(plan.render_text());
    assert_eq!(restarts(&plan), ["service:db:1", "service:web:1"]);
    let calls = host.calls();
    let db_started = last_position(&calls, &Call::StartContainer("shop-db-1".into()));
    let web_stopped = last_position(&calls, &Call::StopContainer("shop-web-1".into()));
    // The wait in between saw db starting, then healthy.
    let db_looks = calls[db_started..web_stopped]
        .iter()
        .filter(|c| **c == Call::InspectContainer("shop-db-1".into()))
        .count();
    assert!(db_looks >= 2, "{calls:?}");
    assert!(!calls.contains(&Call::StopContainer("shop-worker-1".into())));
}

#[test]
fn a_container_in_its_start_period_is_never_restarted() {
    let host = host();
    up(&host, MARKED, &defaults());
    host.set_health("shop-web-1", Health::Starting);
    let (_, plan) = plan_for(&host, MARKED, &defaults());
    insta::assert_snapshot!(plan.render_text());
    assert!(plan.is_empty());
    assert_converged(&host, MARKED, &defaults());
}
