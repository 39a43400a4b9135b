//! Tests of the fake host itself: its strictness, injected failures and
//! scripted containers.

use super::*;
use crate::backend::{NetworkConfig, container_labels, observe, project_selector};

fn spec(name: &str, networks: &[&str]) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        service: "web".into(),
        replica: 1,
        image: "nginx".into(),
        config_hash: "h".into(),
        config: serde_json::json!({"image": "nginx"}),
        networks: networks.iter().map(|n| n.to_string()).collect(),
        files_digest: None,
        labels: container_labels("shop", "web", 1, "h"),
    }
}

#[test]
fn a_created_and_started_container_is_observed_running_with_its_image_digest() {
    let host = FakeHost::new();
    host.add_image("nginx", "sha256:1");
    host.create_container(&spec("shop-web-1", &[]))
        .expect("create");
    host.start_container("shop-web-1").expect("start");
    let state = observe(&host, "shop", &["nginx".into()]).expect("observe");
    assert_eq!(state.containers[0].status, ContainerStatus::Running);
    assert_eq!(
        state.containers[0].image_digest.as_deref(),
        Some("sha256:1")
    );
    assert_eq!(state.images["nginx"].as_deref(), Some("sha256:1"));
}

#[test]
fn the_injected_failure_hits_the_nth_mutating_call_and_changes_nothing() {
    let host = FakeHost::new();
    host.publish("nginx", "sha256:1");
    host.fail_on_call(2);
    let _ = host.list_containers(&project_selector("shop"));
    host.pull_image("nginx").expect("first mutation succeeds");
    let net = NetworkSpec {
        name: "shop_default".into(),
        labels: project_selector("shop"),
        config: NetworkConfig::default(),
    };
    assert!(host.create_network(&net).is_err());
    assert!(
        host.list_networks(&project_selector("shop"))
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        host.mutating_calls(),
        [
            Call::PullImage("nginx".into()),
            Call::CreateNetwork("shop_default".into())
        ]
    );
    host.create_network(&net).expect("only the nth call fails");
}

#[test]
#[should_panic(expected = "start of missing container")]
fn starting_a_container_that_does_not_exist_panics() {
    let _ = FakeHost::new().start_container("ghost");
}

#[test]
#[should_panic(expected = "missing network")]
fn creating_a_container_on_a_missing_network_panics() {
    let host = FakeHost::new();
    host.add_image("nginx", "sha256:1");
    let _ = host.create_container(&spec("shop-web-1", &["shop_default"]));
}

fn started(host: &FakeHost) {
    host.add_image("nginx", "sha256:1");
    host.create_container(&spec("shop-web-1", &[]))
        .expect("create");
    host.start_container("shop-web-1").expect("start");
}

fn inspect(host: &FakeHost) -> ObservedContainer {
    host.inspect_container("shop-web-1").expect("inspect")
}

#[test]
fn a_scripted_health_arrives_after_the_given_number_of_inspections() {
    let host = FakeHost::new();
    host.on_start_after("web", ContainerOutcome::Healthy, 2);
    started(&host);
    assert_eq!(inspect(&host).health, Some(Health::Starting));
    assert_eq!(inspect(&host).health, Some(Health::Starting));
    assert_eq!(inspect(&host).health, Some(Health::Healthy));
}

#[test]
fn a_scripted_exit_stops_the_container_with_its_code() {
    let host = FakeHost::new();
    host.on_start("web", ContainerOutcome::Exit(3));
    started(&host);
    let c = inspect(&host);
    assert_eq!((c.status, c.exit_code), (ContainerStatus::Exited, Some(3)));
    host.set_exit("shop-web-1", 0);
    assert_eq!(inspect(&host).exit_code, Some(0));
}

#[test]
fn a_stop_records_sigterm_and_a_start_clears_exit_and_health() {
    let host = FakeHost::new();
    started(&host);
    host.set_health("shop-web-1", Health::Unhealthy);
    host.stop_container("shop-web-1", None).expect("stop");
    assert_eq!(inspect(&host).exit_code, Some(143));
    host.start_container("shop-web-1").expect("start");
    let c = inspect(&host);
    assert_eq!((c.exit_code, c.health), (None, None));
}

#[test]
#[should_panic(expected = "set_health of missing container")]
fn setting_the_health_of_a_missing_container_panics() {
    FakeHost::new().set_health("ghost", Health::Healthy);
}

#[test]
fn a_listed_failure_hits_that_call_only_and_once() {
    let host = FakeHost::new();
    started(&host);
    host.fail_call(Call::InspectContainer("shop-web-1".into()));
    assert!(host.inspect_container("shop-web-1").is_err());
    assert!(host.inspect_container("shop-web-1").is_ok());
}

#[test]
fn the_fake_host_can_be_shared_between_threads() {
    fn shared<T: Sync + Send>() {}
    shared::<FakeHost>();
    let host = FakeHost::new();
    host.publish("nginx", "sha256:1");
    host.set_call_delay(Duration::from_millis(20));
    std::thread::scope(|s| {
        s.spawn(|| host.pull_image("nginx").map(drop));
        s.spawn(|| host.pull_image("nginx").map(drop));
    });
    assert_eq!(host.max_concurrent_calls(), 2);
}

#[test]
fn pulling_an_image_the_registry_lacks_is_an_error_not_a_panic() {
    let err = FakeHost::new().pull_image("nope").expect_err("missing");
    assert_eq!(err.to_string(), "image nope not found");
}

#[test]
fn a_broken_network_is_listed_broken_until_it_is_removed_and_created_again() {
    let host = FakeHost::new();
    let net = NetworkSpec {
        name: "shop_default".into(),
        labels: project_selector("shop"),
        config: NetworkConfig::default(),
    };
    host.create_network(&net).expect("create");
    host.break_network("shop_default", "bridge rc-0 is missing");
    let listed = host.list_networks(&project_selector("shop")).expect("list");
    assert_eq!(listed[0].broken.as_deref(), Some("bridge rc-0 is missing"));
    host.remove_network("shop_default")
        .expect("a broken network goes");
    host.create_network(&net).expect("create again");
    let listed = host.list_networks(&project_selector("shop")).expect("list");
    assert_eq!(listed[0].broken, None);
}

#[test]
#[should_panic(expected = "break_network of missing network shop_default")]
fn breaking_a_network_that_does_not_exist_panics() {
    FakeHost::new().break_network("shop_default", "bridge rc-0 is missing");
}
