//! The per-container monitor on the real kernel: containers outlive their
//! starter, restart policies, healthchecks, stop with and without init,
//! removal that leaves nothing behind (even after a crash).
//! Root tests: `#[ignore]`d so that a non-root run reports them as skipped;
//! `scripts/test.sh` runs them when root.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Host;
use rcompose_runtime::RestartPolicy;
use rcompose_runtime::config::Healthcheck;
use rcompose_runtime::container::Status;
use rcompose_runtime::health::HealthStatus;

/// Whether a process runs (a zombie waiting for a reaper does not).
fn alive(pid: i32) -> bool {
    rcompose_runtime::container::process_running(pid)
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_container_keeps_running_after_the_process_that_started_it_exits() {
    let host = Host::new(&[]);
    host.runtime
        .create(
            "c-detached",
            host.config(&["sh", "-c", "echo up; sleep 600"]),
        )
        .unwrap();
    host.track("c-detached");
    let paths = host.runtime.paths();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_rcompose-test-monitor"))
        .arg("start")
        .arg(&paths.state_root)
        .arg(&paths.run_dir)
        .arg("c-detached")
        .status()
        .unwrap();
    assert!(status.success());
    let state = host.wait_for("c-detached", Duration::from_secs(10), |s| {
        s.status == Status::Running
    });
    assert!(alive(state.pid) && alive(state.monitor_pid), "{state:#?}");
    let parent = std::fs::read_to_string(format!("/proc/{}/stat", state.monitor_pid)).unwrap();
    let ppid: i32 = parent
        .rsplit(") ")
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(
        ppid,
        std::process::id() as i32,
        "the monitor is still our child"
    );
    // The started run is handed over: same pid, soon watching only (the
    // monitor records the run before it execs).
    let supervising = || {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", state.monitor_pid)).unwrap();
        let handed = cmdline.split(|b| *b == 0).nth(1)
            == Some(rcompose_runtime::monitor::SUPERVISE_ARG.as_bytes());
        (handed, String::from_utf8_lossy(&cmdline).into_owned())
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !supervising().0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (handed, cmdline) = supervising();
    assert!(handed, "{cmdline:?}");
    host.wait_for("c-detached", Duration::from_secs(10), |_| {
        host.output("c-detached") == "up\n"
    });
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn on_failure_3_restarts_exactly_three_times() {
    let host = Host::new(&[]);
    let mut config = host.config(&["sh", "-c", "echo run; exit 2"]);
    config.restart = RestartPolicy::OnFailure {
        max_retries: Some(3),
    };
    let (state, output) = host.run_to_end("c-restart", config);
    assert_eq!(state.restart_count, 3, "{state:#?}");
    assert_eq!(state.exit_code, Some(2));
    assert_eq!(output.matches("run\n").count(), 4, "{output}");
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_successful_exit_is_not_restarted_on_failure() {
    let host = Host::new(&[]);
    let mut config = host.config(&["sh", "-c", "echo run"]);
    config.restart = RestartPolicy::OnFailure {
        max_retries: Some(3),
    };
    let (state, output) = host.run_to_end("c-norestart", config);
    assert_eq!((state.restart_count, output.as_str()), (0, "run\n"));
}

fn check(test: &[&str]) -> Healthcheck {
    Healthcheck {
        test: test.iter().map(|s| s.to_string()).collect(),
        interval: Some(Duration::from_millis(200)),
        timeout: Some(Duration::from_secs(5)),
        retries: Some(2),
        ..Healthcheck::default()
    }
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_failing_healthcheck_turns_the_container_unhealthy_and_a_passing_one_healthy() {
    let host = Host::new(&[]);
    let mut sick = host.config(&["sleep", "600"]);
    sick.healthcheck = Some(check(&["CMD-SHELL", "echo checking; exit 1"]));
    host.run("c-sick", sick);
    let mut well = host.config(&["sleep", "600"]);
    well.healthcheck = Some(check(&["CMD", "test", "-d", "/proc/1"]));
    host.run("c-well", well);
    let limit = Duration::from_secs(20);
    let is = |status| {
        move |s: &rcompose_runtime::container::ContainerState| {
            s.health.as_ref().is_some_and(|h| h.status == status)
        }
    };
    let state = host.wait_for("c-sick", limit, is(HealthStatus::Unhealthy));
    let health = state.health.unwrap();
    assert!(health.failing_streak >= 2);
    assert!(
        health.log.last().unwrap().output.contains("checking"),
        "{health:#?}"
    );
    host.wait_for("c-well", limit, is(HealthStatus::Healthy));
}

fn timed_stop(host: &Host, id: &str, grace: Duration) -> (Duration, Option<i32>) {
    host.wait_for(id, Duration::from_secs(10), |s| s.status == Status::Running);
    // Give the command time to exec (PID 1 must be sleep, not our init).
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    host.runtime.stop(id, Some(grace)).unwrap();
    let took = started.elapsed();
    (took, host.runtime.inspect(id).unwrap().state.exit_code)
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn stop_waits_the_grace_period_for_a_pid_1_that_ignores_sigterm_then_kills() {
    let host = Host::new(&[]);
    host.run("c-stubborn", host.config(&["sleep", "600"]));
    let grace = Duration::from_secs(2);
    let (took, code) = timed_stop(&host, "c-stubborn", grace);
    assert!(
        took >= grace,
        "stopped after {took:?}, before the grace period"
    );
    assert_eq!(code, Some(137));
    let state = host.runtime.inspect("c-stubborn").unwrap().state;
    assert!(state.stopped_by_user && state.status == Status::Exited);
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn with_init_stop_ends_the_same_command_at_once() {
    let host = Host::new(&[]);
    let mut config = host.config(&["sleep", "600"]);
    config.init = true;
    host.run("c-init", config);
    let grace = Duration::from_secs(5);
    let (took, code) = timed_stop(&host, "c-init", grace);
    assert!(
        took < grace,
        "stop took {took:?}: init did not forward SIGTERM"
    );
    assert_eq!(code, Some(143));
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn init_reaps_orphans_and_stays_pid_1() {
    let host = Host::new(&[]);
    let script =
        "(sleep 0.1 &) ; sleep 0.5; ps -o pid,stat,args; cat /proc/1/cmdline | tr '\\0' ' '";
    let mut config = host.config(&["sh", "-c", script]);
    config.init = true;
    let (_, output) = host.run_to_end("c-reap", config);
    let zombies = output
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("Z"));
    assert_eq!(zombies.count(), 0, "zombies left: {output}");
    assert!(
        output
            .lines()
            .nth(1)
            .is_some_and(|l| l.trim_start().starts_with("1 ")),
        "{output}"
    );
    let state_root = host.runtime.paths().state_root.display().to_string();
    assert!(
        !output.contains(&state_root),
        "PID 1 shows host paths: {output}"
    );
    assert!(output.contains("rcompose-init"), "{output}");
}

fn leftovers(host: &Host, id: &str, pid: i32) -> Vec<String> {
    let mut found = Vec::new();
    let dir = host.runtime.paths().container_dir(id);
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    if info.contains(&dir.display().to_string()) {
        found.push("mount".to_string());
    }
    for hierarchy in ["memory", "pids", "cpu", "unified", ""] {
        let cgroup = Path::new("/sys/fs/cgroup")
            .join(hierarchy)
            .join("rcompose")
            .join(id);
        if cgroup.exists() {
            found.push(cgroup.display().to_string());
        }
    }
    if alive(pid) {
        found.push(format!("process {pid}"));
    }
    for path in [dir, host.runtime.paths().oci_root().join(id)] {
        if path.exists() {
            found.push(path.display().to_string());
        }
    }
    found
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn removing_a_running_container_leaves_no_mount_cgroup_process_or_file() {
    let host = Host::new(&[]);
    let pid = host.run("c-rm", host.config(&["sleep", "600"]));
    assert!(
        !leftovers(&host, "c-rm", pid).is_empty(),
        "the test sees nothing while it runs"
    );
    host.runtime.remove("c-rm", true).unwrap();
    assert_eq!(leftovers(&host, "c-rm", pid), Vec::<String>::new());
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_removal_runs_the_callers_teardown_only_once_the_container_is_known_stopped() {
    let host = Host::new(&[]);
    let pid = host.run("c-along", host.config(&["sleep", "600"]));
    let ran = std::sync::atomic::AtomicBool::new(false);
    let teardown = || ran.store(true, std::sync::atomic::Ordering::SeqCst);
    let refused = host.runtime.remove_alongside("c-along", false, teardown);
    assert!(refused.is_err(), "a running container is refused");
    assert!(
        !ran.load(std::sync::atomic::Ordering::SeqCst),
        "and untouched"
    );
    assert!(alive(pid));
    host.runtime
        .stop("c-along", Some(Duration::from_secs(5)))
        .unwrap();
    let dir = host.runtime.paths().container_dir("c-along");
    let seen = host
        .runtime
        .remove_alongside("c-along", false, || {
            ran.store(true, std::sync::atomic::Ordering::SeqCst);
            "torn down"
        })
        .unwrap();
    assert_eq!(seen, "torn down");
    assert!(ran.load(std::sync::atomic::Ordering::SeqCst));
    assert!(!dir.exists());
    assert_eq!(leftovers(&host, "c-along", pid), Vec::<String>::new());
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn after_its_monitor_is_killed_a_container_is_noticed_dead_and_removed_cleanly() {
    let host = Host::new(&[]);
    let pid = host.run("c-crash", host.config(&["sleep", "600"]));
    let monitor = host.runtime.inspect("c-crash").unwrap().state.monitor_pid;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let state = host.wait_for("c-crash", Duration::from_secs(10), |s| {
        s.status == Status::Dead
    });
    assert!(state.error.is_some());
    host.runtime.remove("c-crash", false).unwrap();
    assert_eq!(leftovers(&host, "c-crash", pid), Vec::<String>::new());
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_command_that_does_not_exist_fails_the_start_clearly_and_leaves_nothing_running() {
    let host = Host::new(&[]);
    host.runtime
        .create("c-missing", host.config(&["/no/such/binary"]))
        .unwrap();
    host.track("c-missing");
    let started = host.runtime.start("c-missing");
    let state = match started {
        Err(e) => {
            let message = e.to_string();
            assert!(message.contains("c-missing"), "{message}");
            host.runtime.inspect("c-missing").unwrap().state
        }
        // The exec may fail after start returned: then the run exits at once.
        Ok(_) => host.wait_exit("c-missing", Duration::from_secs(10)),
    };
    assert_eq!(state.status, Status::Exited, "{state:#?}");
    assert_ne!(state.exit_code, Some(0));
    assert_eq!(
        leftovers(&host, "c-missing", state.pid).len(),
        1,
        "only its directory remains"
    );
}
