//! `rcompose oci` drives a busybox bundle through the OCI lifecycle:
//! create → start → state → kill → delete, and `run`.
//! Root tests: `#[ignore]`d so that a non-root run reports them as skipped;
//! `scripts/test.sh` runs them when root.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rcompose_runtime::testing;

struct Oci {
    root: tempfile::TempDir,
    ids: Vec<String>,
}

impl Oci {
    fn new() -> Oci {
        assert!(testing::is_root(), "this test needs root");
        Oci {
            root: tempfile::tempdir().unwrap(),
            ids: Vec::new(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rcompose"));
        command
            .arg("oci")
            .arg("--root")
            .arg(self.root.path())
            .args(args);
        if args.first() == Some(&"create") {
            // The created process inherits our stdio and keeps it open while it
            // lives, so capturing it through pipes would wait for its exit.
            let log = self.root.path().join("create.log");
            command.stdout(std::fs::File::create(&log).unwrap());
            command.stderr(std::fs::File::options().append(true).open(&log).unwrap());
            let status = command.status().unwrap();
            let stderr = std::fs::read(&log).unwrap();
            return Output {
                status,
                stdout: Vec::new(),
                stderr,
            };
        }
        command.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn status(&self, id: &str) -> String {
        let state: serde_json::Value = serde_json::from_str(&self.ok(&["state", id])).unwrap();
        state["status"].as_str().unwrap().to_string()
    }
}

impl Drop for Oci {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = self.cmd(&["delete", "--force", id]);
        }
    }
}

fn wait_status(oci: &Oci, id: &str, wanted: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while oci.status(id) != wanted {
        assert!(Instant::now() < deadline, "{id} never became {wanted}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_bundle_goes_through_create_start_state_kill_delete() {
    let mut oci = Oci::new();
    let dir = tempfile::tempdir().unwrap();
    let bundle = testing::oci_bundle(dir.path(), &["sleep", "600"]).unwrap();
    let pid_file = dir.path().join("pid");
    oci.ids.push("life".into());
    oci.ok(&[
        "create",
        "--bundle",
        bundle.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        "life",
    ]);
    let state: serde_json::Value = serde_json::from_str(&oci.ok(&["state", "life"])).unwrap();
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], "life");
    let pid = state["pid"].as_i64().unwrap();
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        pid.to_string()
    );
    assert_eq!(
        Path::new(state["bundle"].as_str().unwrap()),
        bundle.canonicalize().unwrap()
    );
    oci.ok(&["start", "life"]);
    wait_status(&oci, "life", "running");
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.starts_with("sleep\x00600"), "{cmdline:?}");
    assert!(
        !oci.cmd(&["delete", "life"]).status.success(),
        "a running container must not be deleted"
    );
    oci.ok(&["kill", "life", "KILL"]);
    wait_status(&oci, "life", "stopped");
    oci.ok(&["delete", "life"]);
    assert!(!oci.cmd(&["state", "life"]).status.success());
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists() || {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.contains(") Z")
        }
    );
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn run_waits_for_the_process_and_exits_with_its_status() {
    let oci = Oci::new();
    let dir = tempfile::tempdir().unwrap();
    let bundle =
        testing::oci_bundle(dir.path(), &["sh", "-c", "echo hello from $$; exit 7"]).unwrap();
    let out = oci.cmd(&["run", "--bundle", bundle.to_str().unwrap(), "once"]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from 1\n");
    assert!(
        !oci.cmd(&["state", "once"]).status.success(),
        "run must delete the container"
    );
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn disable_oom_killer_reaches_the_v1_memory_cgroup() {
    let mut oci = Oci::new();
    let v1 = Path::new("/sys/fs/cgroup/memory");
    if !v1.join("memory.oom_control").exists() {
        return; // a cgroup v2 host: the setting has no file of its own there
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = testing::oci_bundle(dir.path(), &["sleep", "600"]).unwrap();
    let path = bundle.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    spec["linux"]["cgroupsPath"] = "/rcompose/oci-test-oom".into();
    spec["linux"]["resources"]["memory"] =
        serde_json::json!({ "limit": 67108864, "disableOOMKiller": true });
    std::fs::write(&path, serde_json::to_vec(&spec).unwrap()).unwrap();
    oci.ids.push("oom".into());
    oci.ok(&["create", "--bundle", bundle.to_str().unwrap(), "oom"]);
    let control =
        std::fs::read_to_string(v1.join("rcompose/oci-test-oom/memory.oom_control")).unwrap();
    assert!(control.contains("oom_kill_disable 1"), "{control}");
    oci.ok(&["delete", "--force", "oom"]);
    assert!(!v1.join("rcompose/oci-test-oom").exists());
}
