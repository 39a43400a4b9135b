//! `x-rcompose: {restart_on_unhealthy: true}` end to end on a real host:
//! under `rcompose watch`, a container whose healthcheck starts failing is
//! restarted by the controller and turns healthy again, and the pass log
//! names it as drift. Runs in a fresh network namespace entered after the
//! image pull. Root test: `#[ignore]`d so that a non-root run reports it as
//! skipped; `scripts/test.sh` runs it when root.

use rcompose_netctl::testing::{ThreadNetns, assert_no_links_or_table_of_ours, run};

mod common;

use common::{Controller, eventually};

/// `(started_at, health)` of a running container.
fn health(cli: &common::Rcompose, name: &str) -> Option<(String, String)> {
    let info = cli.inspect(name)?;
    let state = &info["state"];
    (state["status"] == "running").then(|| {
        (
            state["started_at"].as_str().unwrap_or_default().to_string(),
            state["health"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    })
}

fn stack(image: &str) -> String {
    format!(
        r#"name: unhealthy
services:
  web:
    image: {image}
    init: true
    stop_grace_period: 1s
    command: ["sh", "-c", "touch /tmp/ok; exec sleep 600"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ok"]
      interval: 1s
      retries: 2
    x-rcompose:
      restart_on_unhealthy: true
"#
    )
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn watch_restarts_a_container_that_turns_unhealthy_when_its_service_asks_for_it() {
    let (_registry, cli, image) = common::with_web_image("test/unhealthy:1", b"x");
    let _netns = ThreadNetns::enter_new().unwrap();
    run(&["ip", "link", "set", "lo", "up"]);
    let file = cli.dir.path().join("compose.yaml");
    std::fs::write(&file, stack(&image)).unwrap();
    let file_text = file.display().to_string();
    let log_path = cli.dir.path().join("watch.log");
    let ctl = Controller::watch(cli, &file_text, &[], &log_path);
    let cli = &ctl.cli;
    let name = "unhealthy-web-1";
    eventually("web is healthy", || {
        health(cli, name).is_some_and(|(_, h)| h == "healthy")
    });
    let (started, _) = health(cli, name).unwrap();

    // The healthcheck fails from now on, until the command runs again.
    cli.ok(&["exec", "-f", &file_text, "web", "rm", "/tmp/ok"]);
    eventually("web is restarted and healthy again", || {
        health(cli, name).is_some_and(|(s, h)| s != started && h == "healthy")
    });

    // The pass that restarted it names the unhealthy container as drift.
    eventually("the pass log names the drift", || {
        std::fs::read_to_string(&log_path)
            .unwrap()
            .contains(&format!("container {name} was unhealthy"))
    });
    drop(ctl);
    assert_no_links_or_table_of_ours();
}
