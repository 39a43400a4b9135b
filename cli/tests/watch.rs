//! `rcompose watch` and `rcompose sync` end to end on a real host: the
//! controller recreates the container whose service changed in the file,
//! brings back a container killed by hand and a network whose bridge was
//! deleted; sync follows a local bare git repository, refuses an invalid
//! commit, and `rollback` returns to the first one. Each test runs in a
//! fresh network namespace entered after the image pull. Root tests:
//! `#[ignore]`d so that a non-root run reports them as skipped;
//! `scripts/test.sh` runs them when root.

use std::path::Path;
use std::process::Command;

use rcompose_netctl::testing::{ThreadNetns, assert_no_links_or_table_of_ours, run};

mod common;

use common::{Controller, eventually};

fn running(cli: &common::Rcompose, name: &str) -> Option<(i64, String)> {
    let info = cli.inspect(name)?;
    (info["state"]["status"] == "running").then(|| {
        (
            info["state"]["pid"].as_i64().unwrap(),
            info["state"]["started_at"].as_str().unwrap().to_string(),
        )
    })
}

fn stack(image: &str, value: &str) -> String {
    format!(
        "name: watched\nservices:\n  a:\n    image: {image}\n    init: true\n    stop_grace_period: 1s\n    \
         command: [\"sleep\", \"600\"]\n    environment:\n      VALUE: \"{value}\"\n  b:\n    image: {image}\n    \
         init: true\n    stop_grace_period: 1s\n    command: [\"sleep\", \"600\"]\n"
    )
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn watch_recreates_the_changed_service_and_heals_kills_and_deleted_networks() {
    let (_registry, cli, image) = common::with_web_image("test/watch:1", b"x");
    let _netns = ThreadNetns::enter_new().unwrap();
    run(&["ip", "link", "set", "lo", "up"]);
    let file = cli.dir.path().join("compose.yaml");
    std::fs::write(&file, stack(&image, "one")).unwrap();
    let file_text = file.display().to_string();
    let log = cli.dir.path().join("watch.log");
    let ctl = Controller::watch(cli, &file_text, &["--format", "json"], &log);
    let cli = &ctl.cli;
    eventually("both containers run", || {
        running(cli, "watched-a-1").is_some() && running(cli, "watched-b-1").is_some()
    });
    let (_, a_started) = running(cli, "watched-a-1").unwrap();
    let (_, b_started) = running(cli, "watched-b-1").unwrap();

    // An edit of a's environment recreates a only.
    std::fs::write(&file, stack(&image, "two")).unwrap();
    eventually("a is recreated with the new value", || {
        running(cli, "watched-a-1").is_some_and(|(_, started)| started != a_started)
            && cli.inspect("watched-a-1").unwrap()["record"]["config"]["env"]["VALUE"] == "two"
    });
    assert_eq!(
        running(cli, "watched-b-1").unwrap().1,
        b_started,
        "b was touched"
    );

    // A container killed by pid comes back.
    let (pid, _) = running(cli, "watched-b-1").unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually("b runs again after the kill", || {
        running(cli, "watched-b-1").is_some_and(|(p, _)| p != pid)
    });

    // A network whose bridge was deleted comes back, with its containers on it.
    let network: serde_json::Value =
        serde_json::from_str(&cli.ok(&["network", "inspect", "watched_default"])).unwrap();
    let bridge = network["network"]["bridge"].as_str().unwrap().to_string();
    run(&["ip", "link", "del", &bridge]);
    eventually("the network is back with both containers on it", || {
        let out = cli.rcompose(&["network", "inspect", "watched_default"]);
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
            return false;
        };
        let Some(now) = v["network"]["bridge"].as_str() else {
            return false;
        };
        let links = run(&["ip", "-j", "link"]);
        links.contains(&format!("\"{now}\"")) && v["endpoints"].as_array().map_or(0, Vec::len) == 2
    });
    eventually("both containers run after the network heal", || {
        running(cli, "watched-a-1").is_some() && running(cli, "watched-b-1").is_some()
    });

    // One JSON line per pass, with the trigger and the drift found.
    let text = std::fs::read_to_string(cli.dir.path().join("watch.log")).unwrap();
    let passes: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        passes
            .iter()
            .any(|p| p["trigger"].as_str().unwrap_or("").contains("compose.yaml")),
        "{text}"
    );
    assert!(
        passes
            .iter()
            .any(|p| p["drift"].to_string().contains("watched-b-1")),
        "{text}"
    );
    drop(ctl);
    assert_no_links_or_table_of_ours();
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn sync_follows_a_git_repository_refuses_a_bad_commit_and_rolls_back() {
    let (_registry, cli, image) = common::with_web_image("test/sync:1", b"x");
    let _netns = ThreadNetns::enter_new().unwrap();
    run(&["ip", "link", "set", "lo", "up"]);
    let origin = cli.dir.path().join("origin.git");
    let work = cli.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(
        cli.dir.path(),
        &[
            "init",
            "--quiet",
            "--bare",
            "-b",
            "main",
            origin.to_str().unwrap(),
        ],
    );
    git(&work, &["init", "--quiet", "-b", "main"]);
    git(
        &work,
        &["remote", "add", "origin", origin.to_str().unwrap()],
    );
    let file = work.join("stacks/app/compose.yaml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let commit = |text: &str, message: &str| {
        std::fs::write(&file, text).unwrap();
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "--quiet", "-m", message]);
        git(&work, &["push", "--quiet", "origin", "main"]);
    };
    let ctl = Controller {
        child: None,
        cli,
        down: ["down", "-v", "-t", "1", "-p", "gitapp"]
            .map(String::from)
            .to_vec(),
    };
    let cli = &ctl.cli;
    let origin_text = origin.display().to_string();
    let sync = || {
        cli.rcompose(&[
            "sync",
            "--repo",
            &origin_text,
            "--ref",
            "main",
            "--path",
            "stacks/app/compose.yaml",
            "--once",
            "-p",
            "gitapp",
        ])
    };
    let value = || {
        cli.inspect("gitapp-a-1").map(|i| {
            i["record"]["config"]["env"]["VALUE"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
    };
    let app = |v: &str| stack(&image, v).replace("name: watched\n", "name: gitapp\n");

    commit(&app("one"), "one");
    let out = sync();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(value().as_deref(), Some("one"));
    assert!(running(cli, "gitapp-a-1").is_some());

    // Unchanged: nothing to do.
    let out = sync();
    assert!(String::from_utf8_lossy(&out.stdout).contains("up to date"));

    commit(&app("two"), "two");
    let out = sync();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("environment.VALUE"),
        "the plan is shown"
    );
    assert_eq!(value().as_deref(), Some("two"));
    let labels = &cli.inspect("gitapp-a-1").unwrap()["record"]["config"]["labels"];
    let synced = labels["io.rcompose.git-commit"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut head = Command::new("git");
    head.args(["-C", work.to_str().unwrap(), "rev-parse", "HEAD"]);
    let head = String::from_utf8(head.output().unwrap().stdout).unwrap();
    assert_eq!(
        synced,
        head.trim(),
        "the container carries the commit it came from"
    );

    commit("name: gitapp\nservices:\n  a:\n    imgae: nope\n", "broken");
    let out = sync();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(stderr.contains("compose.yaml:4:"), "{stderr}");
    assert_eq!(value().as_deref(), Some("two"), "commit two keeps running");
    assert!(running(cli, "gitapp-a-1").is_some());

    let history = cli.ok(&["history", "-p", "gitapp"]);
    assert!(history.lines().count() >= 3, "{history}");
    // Its operations are shown as `up` shows them (`--progress` is global).
    let out = cli.rcompose(&["--progress", "json", "rollback", "1", "-p", "gitapp"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let finished: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "finished")
        .collect();
    assert!(
        finished
            .iter()
            .any(|e| e["operation"].as_str().unwrap_or("").contains("gitapp-a-1")),
        "{stderr}"
    );
    assert_eq!(value().as_deref(), Some("one"));
    assert!(running(cli, "gitapp-a-1").is_some());
}
