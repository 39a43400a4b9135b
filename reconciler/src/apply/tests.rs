//! Tests of the executor on the fake host: failure on each operation then
//! convergence, the parallelism bound, the order of waits and starts,
//! events, and `up --wait`.

use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::backend::{ContainerStatus, Health};
use crate::fake::{Call, ContainerOutcome, FakeHost};
use crate::plan::tests::depends::{CHAIN, JOB};
use crate::plan::tests::{assert_converged, fast, host, plan_for, run, up};
use crate::plan::{Plan, PlanOptions};

fn defaults() -> PlanOptions {
    PlanOptions::default()
}

/// A host whose `migrate` job exits 0 after one look.
fn job_host() -> FakeHost {
    let host = host();
    host.on_start_after("migrate", ContainerOutcome::Exit(0), 1);
    host
}

/// The first host call operation `op` makes.
fn first_call(plan: &Plan, op: usize) -> Call {
    match &plan.ops[op].action {
        Action::CreateNetwork(s) => Call::CreateNetwork(s.name.clone()),
        Action::CreateVolume(s) => Call::CreateVolume(s.name.clone()),
        Action::PullImage { reference } => Call::PullImage(reference.clone()),
        Action::CreateContainer(s) => Call::CreateContainer(s.name.clone()),
        Action::StartContainer { name, .. } => Call::StartContainer(name.clone()),
        Action::WaitFor {
            project,
            dependency,
            ..
        } => Call::InspectContainer(format!("{project}-{dependency}-1")),
        other => panic!("no fresh plan holds {other:?}"),
    }
}

/// Applies `plan`, making operation `n` fail: its first call is set to
/// fail the moment it starts, so no other operation can take the failure.
fn apply_failing(host: &FakeHost, plan: &Plan, n: usize, options: &ApplyOptions) -> Report {
    let call = first_call(plan, n);
    let inject = |e: &Event| {
        if *e == (Event::Started { op: n }) {
            host.fail_call(call.clone());
        }
    };
    apply(host, plan, options, &inject)
}

#[test]
fn a_failure_on_each_operation_reports_done_and_not_run_and_the_next_apply_converges() {
    let (_, fresh) = plan_for(&job_host(), JOB, &defaults());
    let sequential = ApplyOptions {
        parallel: 1,
        ..fast()
    };
    for n in 0..fresh.ops.len() {
        let host = job_host();
        let (_, plan) = plan_for(&host, JOB, &defaults());
        let report = apply_failing(&host, &plan, n, &sequential);
        // One at a time, in plan order: all before n done, all after not run.
        assert_eq!(report.done, (0..n).collect::<Vec<_>>(), "op {n}");
        assert_eq!(report.failed.len(), 1, "op {n}");
        assert_eq!(report.failed[0].0, n);
        assert!(
            report.failed[0].1.contains("injected failure"),
            "{report:?}"
        );
        assert_eq!(report.not_run, (n + 1..plan.ops.len()).collect::<Vec<_>>());
        assert!(!report.ok());
        up(&host, JOB, &defaults());
    }
}

#[test]
fn in_parallel_a_failure_stops_only_what_has_not_started_and_dependents_never_run() {
    let (_, fresh) = plan_for(&job_host(), JOB, &defaults());
    // Two waits on db may run at once, so an injected inspection failure
    // could hit either: waits are covered one at a time above.
    let not_waits =
        (0..fresh.ops.len()).filter(|&n| !matches!(fresh.ops[n].action, Action::WaitFor { .. }));
    for n in not_waits {
        let host = job_host();
        let (_, plan) = plan_for(&host, JOB, &defaults());
        let report = apply_failing(&host, &plan, n, &fast());
        assert_eq!(report.failed.iter().map(|f| f.0).collect::<Vec<_>>(), [n]);
        let mut all: Vec<usize> = report.done.clone();
        all.extend(&report.not_run);
        all.push(n);
        all.sort_unstable();
        assert_eq!(all, (0..plan.ops.len()).collect::<Vec<_>>());
        assert!(plan.ops[n].deps.iter().all(|d| report.done.contains(d)));
        for &d in &report.done {
            assert!(plan.ops[d].deps.iter().all(|x| report.done.contains(x)));
        }
        up(&host, JOB, &defaults());
    }
}

#[test]
fn a_job_that_fails_stops_its_dependent_and_the_report_says_why() {
    let host = host();
    host.on_start("migrate", ContainerOutcome::Exit(1));
    let (_, plan) = plan_for(&host, JOB, &defaults());
    let report = run(&host, &plan);
    insta::assert_snapshot!(report.render_text());
    assert!(host.container("shop-web-1").is_none());
    host.on_start("migrate", ContainerOutcome::Exit(0));
    up(&host, JOB, &defaults());
}

#[test]
fn at_most_parallel_operations_run_at_once() {
    let yaml = format!(
        "services:\n  web:\n    image: nginx:1.25\n    scale: {}\n",
        DEFAULT_PARALLEL + 2
    );
    let yaml = yaml.as_str();
    for (parallel, bound) in [(1, 1), (2, 2), (0, DEFAULT_PARALLEL)] {
        let host = host();
        host.set_call_delay(Duration::from_millis(20));
        let (_, plan) = plan_for(&host, yaml, &defaults());
        let options = ApplyOptions { parallel, ..fast() };
        assert!(apply(&host, &plan, &options, &|_| {}).ok());
        assert_eq!(host.max_concurrent_calls(), bound, "parallel {parallel}");
        assert_converged(&host, yaml, &defaults());
    }
}

#[test]
fn no_operation_starts_before_every_operation_it_depends_on_finished() {
    let host = host();
    host.set_call_delay(Duration::from_millis(1));
    host.on_start_after("db", ContainerOutcome::Healthy, 3);
    host.on_start_after("api", ContainerOutcome::Healthy, 2);
    let yaml = CHAIN.replace(
        "    image: nginx:1.27\n",
        "    image: nginx:1.27\n    scale: 3\n",
    );
    let (_, plan) = plan_for(&host, &yaml, &defaults());
    let events = Mutex::new(Vec::new());
    let report = apply(&host, &plan, &fast(), &|e: &Event| {
        events.lock().expect("events").push(e.clone());
    });
    assert!(report.ok(), "{}", report.render_text());
    let events = events.into_inner().expect("events");
    let at = |wanted: Event| {
        events
            .iter()
            .position(|e| *e == wanted)
            .unwrap_or_else(|| panic!("no {wanted:?}"))
    };
    for (i, op) in plan.ops.iter().enumerate() {
        for &d in &op.deps {
            assert!(at(Event::Finished { op: d }) < at(Event::Started { op: i }));
        }
    }
    // Each web replica was created only once api had been seen healthy.
    let calls = host.calls();
    let inspect_api = Call::InspectContainer("shop-api-1".into());
    let healthy_seen = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == inspect_api)
        .nth(2)
        .map(|(i, _)| i)
        .expect("three inspections of api");
    for n in 1..=3 {
        let create = Call::CreateContainer(format!("shop-web-{n}"));
        let at = calls.iter().position(|c| *c == create).expect("web create");
        assert!(
            at > healthy_seen,
            "shop-web-{n} created before api was healthy"
        );
    }
}

#[test]
fn a_wait_that_runs_out_of_time_fails_listing_the_containers_not_ready() {
    let host = host();
    host.on_start_after("db", ContainerOutcome::Healthy, u32::MAX);
    let (_, plan) = plan_for(&host, CHAIN, &defaults());
    let options = ApplyOptions {
        wait_timeout: Some(Duration::from_millis(20)),
        ..fast()
    };
    let report = apply(&host, &plan, &options, &|_| {});
    let (op, error) = &report.failed[0];
    assert!(matches!(plan.ops[*op].action, Action::WaitFor { .. }));
    assert_eq!(
        error,
        "failed waiting for service db (service_healthy) before service api: \
         timed out after 20ms waiting for shop-db-1"
    );
}

#[test]
fn waiting_for_health_of_a_container_without_a_healthcheck_fails_at_once() {
    let host = host();
    let (_, plan) = plan_for(&host, CHAIN, &defaults());
    let report = run(&host, &plan);
    assert!(
        report.failed[0]
            .1
            .ends_with("container shop-db-1 has no healthcheck to wait for"),
        "{report:?}"
    );
}

#[test]
fn a_recreate_of_a_container_already_gone_creates_it() {
    let host = host();
    let yaml = "services:\n  web:\n    image: nginx:1.25\n";
    up(&host, yaml, &defaults());
    let (_, plan) = plan_for(
        &host,
        yaml,
        &PlanOptions {
            force_recreate: true,
            ..defaults()
        },
    );
    host.stop_container("shop-web-1", None).expect("stop");
    host.remove_container("shop-web-1", false).expect("remove");
    assert!(run(&host, &plan).ok());
    assert_converged(&host, yaml, &defaults());
}

#[test]
fn a_restart_stops_then_starts_the_container() {
    let host = host();
    let yaml = "services:\n  web:\n    image: nginx:1.25\n";
    up(&host, yaml, &defaults());
    let before = host.mutating_calls().len();
    let plan = Plan {
        ops: vec![crate::plan::Op {
            id: "service:web:1".into(),
            action: Action::RestartContainer {
                name: "shop-web-1".into(),
                service: "web".into(),
            },
            cause: vec![],
            deps: vec![],
        }],
        warnings: vec![],
    };
    assert!(run(&host, &plan).ok());
    assert_eq!(
        host.mutating_calls()[before..],
        [
            Call::StopContainer("shop-web-1".into()),
            Call::StartContainer("shop-web-1".into())
        ]
    );
}

#[test]
fn events_serialize_as_json_lines_tagged_by_event() {
    let lines: Vec<String> = [
        Event::Started { op: 3 },
        Event::Failed {
            op: 3,
            error: "boom".into(),
        },
    ]
    .iter()
    .map(|e| serde_json::to_string(e).expect("json"))
    .collect();
    assert_eq!(
        lines,
        [
            r#"{"event":"started","op":3}"#,
            r#"{"event":"failed","op":3,"error":"boom"}"#
        ]
    );
}

#[test]
fn an_empty_plan_reports_nothing_and_renders_zeros() {
    let report = run(&host(), &Plan::default());
    assert!(report.ok());
    assert_eq!(report.render_text(), "0 done, 0 failed, 0 not run\n");
}

#[test]
fn ops_describe_themselves_for_the_cli() {
    let (_, plan) = plan_for(&host(), JOB, &defaults());
    let described: Vec<String> = plan.ops.iter().map(|op| op.describe()).collect();
    assert_eq!(described[7], "create container shop-migrate-1");
    assert_eq!(
        described[10],
        "wait for service migrate to complete successfully"
    );
}

mod wait_ready {
    use super::*;

    fn names(services: &[&str]) -> Vec<String> {
        services.iter().map(|s| s.to_string()).collect()
    }

    fn ready(host: &FakeHost, yaml: &str, services: &[&str]) -> Result<(), WaitError> {
        let (desired, _) = plan_for(host, yaml, &defaults());
        let timeout = Some(Duration::from_millis(30));
        wait_ready(
            host,
            &desired,
            &names(services),
            timeout,
            Duration::from_millis(1),
        )
    }

    fn healthy_chain() -> FakeHost {
        let host = host();
        host.on_start("db", ContainerOutcome::Healthy);
        host.on_start("api", ContainerOutcome::Healthy);
        up(&host, CHAIN, &defaults());
        host
    }

    #[test]
    fn running_and_healthy_services_are_ready() {
        ready(&healthy_chain(), CHAIN, &[]).expect("ready");
    }

    #[test]
    fn an_unhealthy_container_fails_at_once_naming_it() {
        let host = healthy_chain();
        host.set_health("shop-api-1", Health::Unhealthy);
        let err = ready(&host, CHAIN, &["api"]).expect_err("unhealthy");
        assert_eq!(err.to_string(), "container shop-api-1 is unhealthy");
    }

    #[test]
    fn a_container_still_starting_runs_into_the_timeout_which_lists_it() {
        let host = healthy_chain();
        host.set_health("shop-db-1", Health::Starting);
        let err = ready(&host, CHAIN, &[]).expect_err("timeout");
        assert_eq!(
            err.to_string(),
            "timed out after 30ms waiting for shop-db-1"
        );
    }

    #[test]
    fn a_service_not_asked_about_is_not_waited_for() {
        let host = healthy_chain();
        host.set_health("shop-db-1", Health::Starting);
        ready(&host, CHAIN, &["web"]).expect("web is ready");
    }

    #[test]
    fn a_completed_job_is_ready_and_a_failed_one_fails_naming_its_container() {
        let host = host();
        host.on_start("migrate", ContainerOutcome::Exit(0));
        up(&host, JOB, &defaults());
        ready(&host, JOB, &[]).expect("ready");
        host.set_exit("shop-migrate-1", 2);
        let err = ready(&host, JOB, &[]).expect_err("failed job");
        assert_eq!(
            err.to_string(),
            "service migrate didn't complete successfully: exit 2 (container shop-migrate-1)"
        );
    }

    #[test]
    fn an_exited_service_that_is_not_a_job_fails() {
        let host = host();
        host.on_start("migrate", ContainerOutcome::Exit(0));
        up(&host, JOB, &defaults());
        host.set_exit("shop-web-1", 0);
        let err = ready(&host, JOB, &["web"]).expect_err("exited");
        assert_eq!(err.to_string(), "container shop-web-1 exited (code 0)");
        assert_eq!(
            host.container("shop-web-1").expect("web").status,
            ContainerStatus::Exited
        );
    }

    #[test]
    fn a_name_not_in_the_file_is_an_error() {
        let err = ready(&host(), JOB, &["nope"]).expect_err("unknown");
        assert_eq!(err.to_string(), "service nope is not in the stack file");
    }
}
