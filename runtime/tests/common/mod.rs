//! Shared harness of the root container tests: a loopback registry with a
//! busybox image, a fresh state root, and a guard that removes every
//! container (mounts, cgroups, processes, files) even when a test fails.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rcompose_runtime::container::{ContainerState, Paths, Status};
use rcompose_runtime::manager::{MonitorCommand, Runtime};
use rcompose_runtime::reference::Reference;
use rcompose_runtime::registry::{self, PullOptions};
use rcompose_runtime::store::Store;
use rcompose_runtime::testing::{self, ExtraFile, TestRegistry};

/// A runtime on a temporary state root with a busybox image pulled into it.
pub struct Host {
    pub runtime: Runtime,
    pub image: String,
    ids: std::cell::RefCell<Vec<String>>,
    _registry: TestRegistry,
    _tmp: tempfile::TempDir,
}

pub fn assert_root() {
    assert!(testing::is_root(), "this test needs root");
}

impl Host {
    /// A host whose image holds busybox plus `extra` files.
    pub fn new(extra: &[ExtraFile]) -> Host {
        assert_root();
        let registry = TestRegistry::start(false).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths {
            state_root: tmp.path().join("state"),
            run_dir: tmp.path().join("run"),
        };
        let image = registry.push_busybox("test/busybox:1", extra).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store = Store::open(&paths.state_root).unwrap();
            let reference = Reference::parse(&image).unwrap();
            registry::pull(&store, &reference, &PullOptions::default())
                .await
                .unwrap();
        });
        drop(rt);
        let monitor = MonitorCommand {
            program: PathBuf::from(env!("CARGO_BIN_EXE_rcompose-test-monitor")),
            args: vec!["__monitor".into()],
        };
        Host {
            runtime: Runtime::new(paths, monitor),
            image,
            ids: Default::default(),
            _registry: registry,
            _tmp: tmp,
        }
    }

    /// A container config running `command` in the test image.
    pub fn config(&self, command: &[&str]) -> rcompose_runtime::ContainerConfig {
        rcompose_runtime::ContainerConfig {
            image: self.image.clone(),
            command: Some(command.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    /// Creates and starts a container; it is removed when the host drops.
    pub fn run(&self, id: &str, config: rcompose_runtime::ContainerConfig) -> i32 {
        self.runtime.create(id, config).unwrap();
        self.track(id);
        self.runtime.start(id).unwrap()
    }

    /// Removes the container when the host drops.
    pub fn track(&self, id: &str) {
        self.ids.borrow_mut().push(id.to_string());
    }

    /// Waits until `check` holds for the container's state (panics after `limit`).
    pub fn wait_for(
        &self,
        id: &str,
        limit: Duration,
        check: impl Fn(&ContainerState) -> bool,
    ) -> ContainerState {
        let deadline = Instant::now() + limit;
        loop {
            let state = self.runtime.inspect(id).unwrap().state;
            if check(&state) {
                return state;
            }
            assert!(
                Instant::now() < deadline,
                "gave up waiting; last state: {state:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the container to exit and stay exited.
    pub fn wait_exit(&self, id: &str, limit: Duration) -> ContainerState {
        self.wait_for(id, limit, |s| {
            s.status == Status::Exited && s.monitor_pid == 0
        })
    }

    /// Everything the container wrote, stdout and stderr, in order.
    pub fn output(&self, id: &str) -> String {
        let query = rcompose_runtime::logs::LogQuery::default();
        let entries = rcompose_runtime::logs::read_logs(&self.runtime.log_dir(id), &query).unwrap();
        entries.iter().map(|e| e.line.as_str()).collect()
    }

    /// Runs a command to completion and returns its output.
    pub fn run_to_end(
        &self,
        id: &str,
        config: rcompose_runtime::ContainerConfig,
    ) -> (ContainerState, String) {
        self.run(id, config);
        let state = self.wait_exit(id, Duration::from_secs(30));
        (state, self.output(id))
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            if let Err(e) = self.runtime.remove(id, true) {
                eprintln!("cleanup of {id} failed: {e}");
            }
        }
    }
}

/// The static `probe` helper (tests/fixtures/probe.c), compiled once.
pub fn probe_binary() -> Vec<u8> {
    static BINARY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BINARY
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("probe");
            let source = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/probe.c");
            let status = std::process::Command::new("gcc")
                .args(["-static", "-O1", "-o"])
                .arg(&out)
                .arg(source)
                .status()
                .expect("gcc is installed by scripts/setup.sh");
            assert!(status.success(), "failed to compile {source}");
            std::fs::read(out).unwrap()
        })
        .clone()
}

/// A host whose image also holds /bin/probe.
pub fn host_with_probe() -> Host {
    Host::new(&[("bin/probe".to_string(), probe_binary(), 0o755)])
}
