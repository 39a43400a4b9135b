//! Golden scenarios of networks and volumes that change under running
//! containers: a drifted network, or one whose bridge was deleted by hand,
//! is recreated with the containers attached to it unless one of them must
//! be left alone (a broken external network is only warned about), a
//! drifted volume is kept,
//! and a service that stops using a network or volume is recreated while
//! the network or volume stays. Each is applied with the real executor on
//! the fake host and checked for convergence.

use super::*;
use crate::backend::{NetworkConfig, ObservedNetwork, ObservedVolume, VolumeBackend, VolumeConfig};
use crate::fake::Call;

/// [`STACK`] with the `front` network made internal.
fn internal_front() -> String {
    STACK.replace(
        "networks:\n  front: {}\n",
        "networks:\n  front:\n    internal: true\n",
    )
}

/// [`STACK`] plus a `cache` service on `front`.
fn with_cache_on_front(stack: &str) -> String {
    stack.replace(
        "services:\n",
        "services:\n  cache:\n    image: redis:7\n    networks: [front]\n",
    )
}

fn position(calls: &[Call], wanted: &Call) -> usize {
    calls
        .iter()
        .position(|c| c == wanted)
        .unwrap_or_else(|| panic!("no call {wanted:?} in {calls:?}"))
}

/// Asserts that `calls` remove web, then `front`, make `front` again, then
/// web again.
fn assert_front_remade_under_web(calls: &[Call]) {
    let removed = position(calls, &Call::RemoveContainer("shop-web-1".into()));
    let gone = position(calls, &Call::RemoveNetwork("shop_front".into()));
    let made = position(calls, &Call::CreateNetwork("shop_front".into()));
    let back = position(calls, &Call::CreateContainer("shop-web-1".into()));
    assert!(removed < gone && gone < made && made < back);
}

/// The settings of the network `name` on `host`.
fn network_config(host: &FakeHost, name: &str) -> NetworkConfig {
    let observed = observe(host, "shop", &[]).expect("observe");
    let network = observed.networks.into_iter().find(|n| n.name == name);
    network.expect("network on the host").config
}

fn ops_on_networks(plan: &Plan) -> usize {
    plan.ops
        .iter()
        .filter(|op| op.id.starts_with("network:"))
        .count()
}

#[test]
fn a_network_whose_settings_changed_is_recreated_with_the_containers_attached_to_it() {
    let host = host();
    up(&host, STACK, &defaults());
    let before = host.calls().len();
    let plan = up(&host, &internal_front(), &defaults());
    insta::assert_snapshot!(plan.render_text());
    assert!(network_config(&host, "shop_front").internal);
    let calls = &host.calls()[before..];
    assert_front_remade_under_web(calls);
    // db is not on `front`: it is left running.
    assert!(plan.ops.iter().all(|op| op.id != "service:db:1"));
}

#[test]
fn a_container_on_two_recreated_networks_is_removed_once_before_both_removals() {
    let yaml = "
services:
  db:
    image: postgres:16
    networks: [front, back]
  web:
    image: nginx:1.25
    networks: [front]
networks:
  front: {}
  back: {}
";
    let host = host();
    up(&host, yaml, &defaults());
    let changed = yaml.replace(
        "  back: {}\n",
        "  back:\n    internal: true\n    driver_opts:\n      com.docker.network.driver.mtu: '1400'\n",
    );
    let changed = changed.replace("  front: {}\n", "  front:\n    enable_ipv6: true\n");
    let plan = up(&host, &changed, &defaults());
    insta::assert_snapshot!(plan.render_text());
    let removals = host
        .mutating_calls()
        .into_iter()
        .filter(|c| *c == Call::RemoveContainer("shop-db-1".into()))
        .count();
    assert_eq!(removals, 1);
}

#[test]
fn a_dependent_with_restart_true_restarts_when_its_dependency_is_recreated_with_its_network() {
    let yaml = "
services:
  db:
    image: postgres:16
    networks: [back]
  web:
    image: nginx:1.25
    depends_on:
      db:
        condition: service_started
        restart: true
networks:
  back: {}
";
    let host = host();
    up(&host, yaml, &defaults());
    let changed = yaml.replace("  back: {}\n", "  back:\n    internal: true\n");
    let plan = up(&host, &changed, &defaults());
    insta::assert_snapshot!(plan.render_text());
    assert_eq!(restarts(&plan), ["service:web:1"]);
}

#[test]
fn an_orphan_attached_to_a_changed_network_keeps_it_with_a_warning() {
    let host = host();
    up(&host, &with_cache_on_front(STACK), &defaults());
    let (_, plan) = plan_for(&host, &internal_front(), &defaults());
    insta::assert_snapshot!(plan.render_text());
    assert!(plan.is_empty());
    assert_converged(&host, &internal_front(), &defaults());
    assert!(!network_config(&host, "shop_front").internal);
}

#[test]
fn with_remove_orphans_the_orphan_goes_first_and_the_network_is_recreated() {
    let host = host();
    up(&host, &with_cache_on_front(STACK), &defaults());
    let options = PlanOptions {
        remove_orphans: true,
        ..defaults()
    };
    let plan = up(&host, &internal_front(), &options);
    insta::assert_snapshot!(plan.render_text());
    assert!(host.container("shop-cache-1").is_none());
    assert!(network_config(&host, "shop_front").internal);
}

#[test]
fn a_service_left_out_by_name_keeps_a_changed_network_it_is_attached_to() {
    let host = host();
    let both = STACK.replace(
        "    volumes: [data:/var/lib/postgresql/data]\n",
        "    volumes: [data:/var/lib/postgresql/data]\n    networks: [front]\n",
    );
    up(&host, &both, &defaults());
    let changed = both.replace(
        "networks:\n  front: {}\n",
        "networks:\n  front:\n    internal: true\n",
    );
    let options = PlanOptions {
        services: vec!["web".into()],
        no_deps: true,
        ..defaults()
    };
    let (_, plan) = plan_for(&host, &changed, &options);
    assert!(plan.is_empty(), "{}", plan.render_text());
    assert_eq!(
        plan.warnings,
        [
            "network shop_front differs from the stack file (internal: false → true); it is kept \
             as is: container shop-db-1 of service db, which this plan leaves alone, is attached \
             to it (plan every service to recreate the network)"
        ]
    );
}

#[test]
fn no_recreate_keeps_a_changed_network_that_has_containers() {
    let host = host();
    up(&host, STACK, &defaults());
    let options = PlanOptions {
        no_recreate: true,
        ..defaults()
    };
    let (_, plan) = plan_for(&host, &internal_front(), &options);
    assert!(plan.is_empty(), "{}", plan.render_text());
    assert_eq!(plan.warnings.len(), 1);
    assert!(plan.warnings[0].contains("--no-recreate keeps it"));
}

#[test]
fn an_external_network_is_never_recreated() {
    let yaml = WEB_ON_EXTERNAL_CORP;
    let host = host();
    // Even carrying our labels and other settings than the file's.
    host.add_network(ObservedNetwork {
        name: "corp".into(),
        labels: crate::backend::project_selector("shop"),
        config: NetworkConfig {
            internal: true,
            ..NetworkConfig::default()
        },
        broken: None,
    });
    let plan = up(&host, yaml, &defaults());
    assert_eq!(ops_on_networks(&plan), 0, "{}", plan.render_text());
    assert!(plan.warnings.is_empty());
    assert!(network_config(&host, "corp").internal);
}

/// What the host backend reports for a network whose bridge is gone.
const MISSING_BRIDGE: &str = "bridge rc-1a2b3c4d5e6f is missing";

#[test]
fn a_network_whose_bridge_was_deleted_is_recreated_with_the_containers_attached_to_it() {
    let host = host();
    up(&host, STACK, &defaults());
    host.break_network("shop_front", MISSING_BRIDGE);
    let before = host.calls().len();
    // `up` applies with the real executor, then checks that a fresh plan is
    // empty and that applying it makes no mutating call.
    let plan = up(&host, STACK, &defaults());
    insta::assert_snapshot!(plan.render_text());
    let calls = &host.calls()[before..];
    assert_front_remade_under_web(calls);
    assert!(plan.ops.iter().all(|op| op.id != "service:db:1"));
    let observed = observe(&host, "shop", &[]).expect("observe");
    assert!(observed.networks.iter().all(|n| n.broken.is_none()));
}

#[test]
fn a_broken_network_whose_settings_also_changed_names_both_causes() {
    let host = host();
    up(&host, STACK, &defaults());
    host.break_network("shop_front", MISSING_BRIDGE);
    let plan = up(&host, &internal_front(), &defaults());
    let removal = plan
        .ops
        .iter()
        .find(|op| matches!(op.action, Action::RemoveNetwork { .. }))
        .expect("the network is removed");
    let causes: Vec<String> = removal.cause.iter().map(Change::to_string).collect();
    assert_eq!(
        causes,
        [
            format!("network: {MISSING_BRIDGE} → recreated"),
            "networks.front.internal: false → true".to_string(),
        ]
    );
    assert!(network_config(&host, "shop_front").internal);
}

#[test]
fn no_recreate_keeps_a_broken_network_that_has_containers_with_a_warning() {
    let host = host();
    up(&host, STACK, &defaults());
    host.break_network("shop_front", MISSING_BRIDGE);
    let options = PlanOptions {
        no_recreate: true,
        ..defaults()
    };
    let (_, plan) = plan_for(&host, STACK, &options);
    assert!(plan.is_empty(), "{}", plan.render_text());
    assert_eq!(
        plan.warnings,
        [format!(
            "network shop_front is unusable ({MISSING_BRIDGE}); it is kept as is: container \
             shop-web-1 is attached to it and --no-recreate keeps it"
        )]
    );
}

#[test]
fn a_broken_external_network_is_never_recreated_but_warned_about() {
    let yaml = WEB_ON_EXTERNAL_CORP;
    let host = host();
    host.add_network(ObservedNetwork {
        name: "corp".into(),
        labels: crate::backend::project_selector("shop"),
        config: NetworkConfig::default(),
        broken: Some("bridge corp0 is missing".into()),
    });
    let plan = up(&host, yaml, &defaults());
    assert_eq!(ops_on_networks(&plan), 0, "{}", plan.render_text());
    assert_eq!(
        plan.warnings,
        [
            "external network corp is unusable (bridge corp0 is missing); it is kept as is, \
             because external networks are never recreated: recreate it by hand"
        ]
    );
    let observed = observe(&host, "shop", &[]).expect("observe");
    assert!(observed.networks[0].broken.is_some(), "left as it was");
}

#[test]
fn a_failure_on_any_operation_of_a_broken_network_recreation_is_converged_by_the_next_up() {
    let probe = host();
    up(&probe, STACK, &defaults());
    probe.break_network("shop_front", MISSING_BRIDGE);
    let before = probe.mutating_calls().len();
    up(&probe, STACK, &defaults());
    let calls = probe.mutating_calls().len() - before;
    for n in 1..=calls {
        let host = host();
        up(&host, STACK, &defaults());
        host.break_network("shop_front", MISSING_BRIDGE);
        host.fail_on_call(n);
        let (_, plan) = plan_for(&host, STACK, &defaults());
        assert!(!run(&host, &plan).ok(), "call {n} should fail");
        up(&host, STACK, &defaults());
        let observed = observe(&host, "shop", &[]).expect("observe");
        assert!(observed.networks.iter().all(|n| n.broken.is_none()));
    }
}

#[test]
fn a_volume_whose_settings_drifted_is_kept_with_a_warning_that_its_data_would_be_lost() {
    let host = host();
    up(&host, STACK, &defaults());
    let (desired, _) = plan_for(&host, STACK, &defaults());
    let data = &desired.volumes["data"];
    host.add_volume(ObservedVolume {
        name: data.name.clone(),
        labels: data.labels.clone(),
        config: VolumeConfig {
            driver_opts: [("type".to_string(), "tmpfs".to_string())].into(),
            ..data.config.clone()
        },
    });
    let (_, plan) = plan_for(&host, STACK, &defaults());
    assert!(plan.is_empty());
    insta::assert_snapshot!(plan.render_text());
}

#[test]
fn a_named_volume_removed_from_a_services_volumes_recreates_that_services_containers_and_keeps_the_volume()
 {
    let host = host();
    up(&host, STACK, &defaults());
    let without = STACK.replace("    volumes: [data:/var/lib/postgresql/data]\n", "");
    let plan = up(&host, &without, &defaults());
    insta::assert_snapshot!(plan.render_text());
    let volumes = host
        .list_volumes(&crate::backend::project_selector("shop"))
        .expect("volumes");
    let names: Vec<&str> = volumes.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["shop_data"]);
    assert!(
        !host
            .mutating_calls()
            .iter()
            .any(|c| matches!(c, Call::RemoveVolume(_)))
    );
}

#[test]
fn a_service_removed_from_a_network_is_recreated_and_the_network_it_left_stays_while_others_use_it()
{
    let host = host();
    let both = STACK.replace(
        "    volumes: [data:/var/lib/postgresql/data]\n",
        "    volumes: [data:/var/lib/postgresql/data]\n    networks: [front]\n",
    );
    up(&host, &both, &defaults());
    let web_left = both.replace("networks: [front, default]", "networks: [default]");
    let plan = up(&host, &web_left, &defaults());
    insta::assert_snapshot!(plan.render_text());
    assert_eq!(ops_on_networks(&plan), 0);
    assert!(!network_config(&host, "shop_front").internal);
    let db = host.container("shop-db-1").expect("db");
    assert_eq!(db.networks, ["shop_front"]);
    let web = host.container("shop-web-1").expect("web");
    assert_eq!(web.networks, ["shop_default"]);
}

#[test]
fn a_failure_on_any_operation_of_a_network_recreation_is_converged_by_the_next_up() {
    let probe = host();
    up(&probe, STACK, &defaults());
    let before = probe.mutating_calls().len();
    up(&probe, &internal_front(), &defaults());
    let calls = probe.mutating_calls().len() - before;
    for n in 1..=calls {
        let host = host();
        up(&host, STACK, &defaults());
        host.fail_on_call(n);
        let (_, plan) = plan_for(&host, &internal_front(), &defaults());
        assert!(!run(&host, &plan).ok(), "call {n} should fail");
        up(&host, &internal_front(), &defaults());
        assert!(network_config(&host, "shop_front").internal);
    }
}
