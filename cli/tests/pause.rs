//! `rcompose pause`, `unpause`, `top` and `events` end to end on a real
//! host, in a fresh network namespace, with an image pulled from a registry
//! on 127.0.0.1. Root tests: `#[ignore]`d so that a non-root run reports
//! them as skipped; `scripts/test.sh` runs them when root.

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rcompose_netctl::testing::{ThreadNetns, run};

mod common;

/// The project's `down -v` however the test ends.
struct Down<'a> {
    cli: &'a common::Rcompose,
    file: String,
}

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = self
            .cli
            .rcompose(&["down", "-v", "-f", &self.file, "-t", "1"]);
        let _ = self.cli.rcompose(&["network", "prune"]);
    }
}

/// A running `rcompose events`, killed on drop.
struct Events {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Events {
    fn start(cli: &common::Rcompose, file: &str) -> Events {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rcompose"))
            .args(["events", "--json", "-f", file])
            .current_dir(cli.dir.path())
            .env("RCOMPOSE_ROOT", cli.dir.path().join("state"))
            .env("RCOMPOSE_RUN_DIR", cli.dir.path().join("run"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Events { child, lines }
    }

    /// The actions seen until `last` (panics after 30 s).
    fn until(&self, last: &str) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {last:?} event; saw {seen:#?}"));
            let event: serde_json::Value = serde_json::from_str(&line).unwrap();
            let done = event["action"] == last;
            seen.push(event);
            if done {
                return seen;
            }
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn pause_top_unpause_and_the_events_of_each_on_a_running_service() {
    let (_registry, cli, image) = common::with_web_image("test/pause:1", b"x");
    let _netns = ThreadNetns::enter_new().unwrap();
    run(&["ip", "link", "set", "lo", "up"]);
    let file = cli.dir.path().join("compose.yaml").display().to_string();
    let yaml = format!(
        "name: frozen\nservices:\n  counter:\n    image: {image}\n    stop_grace_period: 1s\n    \
         command: [\"sh\", \"-c\", \"i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.1; done\"]\n"
    );
    std::fs::write(&file, yaml).unwrap();
    let _down = Down {
        cli: &cli,
        file: file.clone(),
    };
    let stack = |args: &[&str]| {
        let mut full = args.to_vec();
        full.extend(["-f", &file]);
        cli.ok(&full)
    };
    let state = || {
        let ps: Vec<serde_json::Value> =
            serde_json::from_str(&stack(&["ps", "--all", "--format", "json"])).unwrap();
        ps[0]["State"].as_str().unwrap().to_string()
    };

    let events = Events::start(&cli, &file);
    // Let it take its first look before anything exists.
    std::thread::sleep(Duration::from_millis(500));
    stack(&["up", "-d", "--wait", "--wait-timeout", "60"]);
    let actions = |seen: Vec<serde_json::Value>| -> Vec<String> {
        seen.iter()
            .map(|e| e["action"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(actions(events.until("start")), ["create", "start"]);

    assert!(stack(&["pause"]).contains("frozen-counter-1"));
    assert_eq!(state(), "paused");
    assert!(
        stack(&["ps"]).contains("frozen-counter-1"),
        "ps lists paused ones"
    );
    let top = stack(&["top"]);
    let mut lines = top.lines();
    assert_eq!(lines.next(), Some("frozen-counter-1"), "{top}");
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    );
    assert!(top.contains("sh -c i=0;"), "{top}");
    let paused = events.until("pause");
    assert_eq!(paused.len(), 1);
    assert_eq!(paused[0]["id"], "frozen-counter-1");
    assert_eq!(paused[0]["service"], "counter");
    assert_eq!(paused[0]["type"], "container");

    stack(&["unpause"]);
    assert_eq!(state(), "running");
    assert_eq!(actions(events.until("unpause")), ["unpause"]);

    stack(&["pause"]);
    assert_eq!(actions(events.until("pause")), ["pause"]);
    stack(&["stop"]);
    assert_eq!(state(), "exited");
    let stopped = actions(events.until("stop"));
    // The stop thaws it first: a poll may or may not catch it running.
    let expected: &[&[&str]] = &[&["die", "stop"], &["unpause", "die", "stop"]];
    let stopped: Vec<&str> = stopped.iter().map(String::as_str).collect();
    assert!(expected.contains(&&stopped[..]), "{stopped:?}");
    let died = stack(&["ps", "--all", "--format", "json"]);
    assert!(died.contains("\"ExitCode\": 137"), "{died}");
}
