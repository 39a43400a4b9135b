//! Pause and unpause on the real kernel: a frozen container does no work
//! until it is thawed, says `paused` meanwhile, and can still be stopped,
//! killed and removed; `top` lists its processes; the v2 freezer works on
//! a cgroup of the unified hierarchy too.
//! Root tests: `#[ignore]`d so that a non-root run reports them as skipped;
//! `scripts/test.sh` runs them when root.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::Host;
use rcompose_runtime::cgroups::{self, CGROUP_ROOT, Layout};
use rcompose_runtime::config::Healthcheck;
use rcompose_runtime::container::Status;
use rcompose_runtime::health::HealthStatus;

/// Writes a growing number to /tmp/n ten times a second.
const COUNTER: &str = "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.1; done";

/// The counter of the container whose PID 1 is `pid` (`None` mid-write).
fn count(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/root/tmp/n")).ok()?;
    text.trim().parse().ok()
}

/// Waits until the counter passes `floor`; panics after ten seconds.
fn wait_past(pid: i32, floor: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match count(pid) {
            Some(n) if n > floor => return n,
            last => assert!(
                Instant::now() < deadline,
                "the counter stayed at {last:?}, not past {floor}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn frozen(id: &str) -> Option<bool> {
    cgroups::is_frozen(Path::new(CGROUP_ROOT), &cgroups::cgroups_path(id))
}

fn freezer_dir(id: &str) -> PathBuf {
    let layout = Layout::detect().expect("a cgroup layout");
    layout.freezer_dir(Path::new(CGROUP_ROOT), &cgroups::cgroups_path(id))
}

/// Starts the counter in a new container `id`; returns its PID 1 once it counts.
fn run_counter(host: &Host, id: &str) -> i32 {
    host.run(id, host.config(&["sh", "-c", COUNTER]));
    let pid = host
        .wait_for(id, Duration::from_secs(10), |s| s.status == Status::Running)
        .pid;
    wait_past(pid, 0);
    pid
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_paused_container_stops_counting_until_unpaused_and_a_paused_one_can_be_stopped() {
    let host = Host::new(&[]);
    let id = "c-pause";
    let pid = run_counter(&host, id);

    host.runtime.pause(id).unwrap();
    assert_eq!(
        host.runtime.inspect(id).unwrap().state.status,
        Status::Paused
    );
    let listed = host.runtime.list().unwrap();
    let mine = listed.iter().find(|c| c.record.id == id).unwrap();
    assert_eq!(mine.state.status, Status::Paused);
    assert_eq!(frozen(id), Some(true));
    let before = count(pid);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count(pid), before, "the counter moved while paused");
    // Pausing twice changes nothing.
    host.runtime.pause(id).unwrap();

    host.runtime.unpause(id).unwrap();
    assert_eq!(
        host.runtime.inspect(id).unwrap().state.status,
        Status::Running
    );
    assert_eq!(frozen(id), Some(false));
    wait_past(pid, before.unwrap_or(0));

    host.runtime.pause(id).unwrap();
    // sh as PID 1 ignores SIGTERM: the grace period ends in SIGKILL.
    host.runtime.stop(id, Some(Duration::from_secs(1))).unwrap();
    let state = host.runtime.inspect(id).unwrap().state;
    assert_eq!(
        (state.status, state.exit_code, state.monitor_pid),
        (Status::Exited, Some(137), 0),
        "{state:#?}"
    );
    assert!(
        !freezer_dir(id).exists(),
        "the cgroup outlived the container"
    );
    assert!(
        host.runtime.pause(id).is_err(),
        "an exited container paused"
    );
    assert!(
        host.runtime.unpause(id).is_err(),
        "an exited container unpaused"
    );
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_signal_to_a_paused_container_thaws_it_so_that_it_lands() {
    let host = Host::new(&[]);
    let id = "c-pause-kill";
    run_counter(&host, id);
    host.runtime.pause(id).unwrap();
    host.runtime
        .kill(id, nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    let state = host.wait_exit(id, Duration::from_secs(10));
    assert_eq!(state.exit_code, Some(137), "{state:#?}");
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_paused_container_is_removed_with_force_and_leaves_no_cgroup() {
    let host = Host::new(&[]);
    let id = "c-pause-rm";
    run_counter(&host, id);
    host.runtime.pause(id).unwrap();
    assert!(
        host.runtime.remove(id, false).is_err(),
        "removed while live"
    );
    host.runtime.remove(id, true).unwrap();
    assert!(host.runtime.inspect(id).is_err());
    assert!(
        !freezer_dir(id).exists(),
        "the cgroup outlived the container"
    );
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_paused_container_runs_no_healthcheck_and_a_stop_sent_to_its_monitor_thaws_it() {
    let host = Host::new(&[]);
    let id = "c-pause-health";
    let mut config = host.config(&["sleep", "600"]);
    config.stop_grace_period = Some(Duration::from_secs(1));
    config.healthcheck = Some(Healthcheck {
        test: ["CMD", "true"].map(String::from).to_vec(),
        interval: Some(Duration::from_millis(100)),
        timeout: Some(Duration::from_millis(500)),
        retries: Some(1),
        ..Healthcheck::default()
    });
    host.run(id, config);
    let healthy = |s: &rcompose_runtime::container::ContainerState| {
        s.health
            .as_ref()
            .is_some_and(|h| h.status == HealthStatus::Healthy)
    };
    host.wait_for(id, Duration::from_secs(20), healthy);
    host.runtime.pause(id).unwrap();
    let probes = |id: &str| {
        let state = host.runtime.inspect(id).unwrap().state;
        state.health.map(|h| h.log).unwrap_or_default()
    };
    let log = probes(id);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(probes(id), log, "probes ran while paused");
    let state = host.runtime.inspect(id).unwrap().state;
    assert!(healthy(&state), "{state:#?}");
    assert_eq!(state.status, Status::Paused);
    host.runtime.unpause(id).unwrap();
    host.wait_for(id, Duration::from_secs(10), |s| {
        s.health.as_ref().is_some_and(|h| h.log != log)
    });

    // Probes every 100 ms: pauses land at any point of one, and never
    // leave the monitor stuck in a frozen probe.
    for _ in 0..10 {
        host.runtime.pause(id).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        host.runtime.unpause(id).unwrap();
        std::thread::sleep(Duration::from_millis(70));
    }
    host.runtime.pause(id).unwrap();
    // A stop that bypasses `Runtime::stop` (a shutdown signalling every
    // process, say) reaches the monitor of a paused container.
    let monitor = host.runtime.inspect(id).unwrap().state.monitor_pid;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let state = host.wait_exit(id, Duration::from_secs(20));
    assert_eq!(state.exit_code, Some(137), "{state:#?}");
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn top_lists_the_processes_of_a_running_and_of_a_paused_container() {
    let host = Host::new(&[]);
    let id = "c-top";
    let pid = run_counter(&host, id);
    for pause in [false, true] {
        if pause {
            host.runtime.pause(id).unwrap();
        }
        let top = host.runtime.top(id).unwrap();
        assert_eq!(top.titles, rcompose_runtime::top::TITLES);
        let row = top
            .processes
            .iter()
            .find(|r| r[1] == pid.to_string())
            .unwrap_or_else(|| panic!("PID 1 ({pid}) is not listed: {top:#?}"));
        assert_eq!(row[0], "root");
        assert!(row[7].starts_with("sh -c i=0;"), "{row:?}");
        assert!(top.render().contains("sh -c i=0;"));
    }
}

/// A cgroup of the v2 hierarchy holding one `sleep`; thawed, emptied and
/// removed on drop.
struct V2Cgroup {
    root: PathBuf,
    path: String,
    child: Child,
}

impl V2Cgroup {
    fn new(root: &Path) -> V2Cgroup {
        let path = format!("/rcompose-test-freeze-{}", std::process::id());
        let dir = root.join(path.trim_start_matches('/'));
        std::fs::create_dir(&dir).unwrap();
        let child = Command::new("sleep").arg("600").spawn().unwrap();
        let group = V2Cgroup {
            root: root.to_path_buf(),
            path,
            child,
        };
        std::fs::write(dir.join("cgroup.procs"), group.child.id().to_string()).unwrap();
        group
    }
}

impl Drop for V2Cgroup {
    fn drop(&mut self) {
        let _ = cgroups::set_frozen(&self.root, &self.path, false);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = self.root.join(self.path.trim_start_matches('/'));
        if let Err(e) = std::fs::remove_dir(&dir) {
            eprintln!("cleanup of {} failed: {e}", dir.display());
        }
    }
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn the_v2_freezer_freezes_and_thaws_a_cgroup() {
    common::assert_root();
    // On a hybrid host the v2 hierarchy is mounted beside the v1 controllers.
    let root = match Layout::detect() {
        Some(Layout::Unified) => PathBuf::from(CGROUP_ROOT),
        Some(Layout::Hybrid) => Path::new(CGROUP_ROOT).join("unified"),
        other => {
            eprintln!("no cgroup v2 hierarchy on this host ({other:?}): nothing to test");
            return;
        }
    };
    let group = V2Cgroup::new(&root);
    assert_eq!(cgroups::is_frozen(&root, &group.path), Some(false));
    cgroups::set_frozen(&root, &group.path, true).unwrap();
    assert_eq!(cgroups::is_frozen(&root, &group.path), Some(true));
    let dir = root.join(group.path.trim_start_matches('/'));
    assert_eq!(
        std::fs::read_to_string(dir.join("cgroup.freeze"))
            .unwrap()
            .trim(),
        "1"
    );
    cgroups::set_frozen(&root, &group.path, false).unwrap();
    assert_eq!(cgroups::is_frozen(&root, &group.path), Some(false));
    let missing = cgroups::set_frozen(&root, "/rcompose-test-no-such-cgroup", true);
    assert!(
        matches!(missing, Err(cgroups::CgroupError::Missing { .. })),
        "{missing:?}"
    );
    assert!(!root.join("rcompose-test-no-such-cgroup").exists());
}
