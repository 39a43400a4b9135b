//! `rcompose image` and `rcompose container` end to end: pull from a real
//! registry on 127.0.0.1 with basic auth, run, logs, exec, stats, stop, rm,
//! image rm and prune. Root tests: `#[ignore]`d so that a non-root run
//! reports them as skipped; `scripts/test.sh` runs them when root.

use std::path::Path;

use rcompose_runtime::testing::{self, TestRegistry};

mod common;

/// The binary with the registry's credentials file in its environment.
struct Env {
    cli: common::Rcompose,
    auth: std::path::PathBuf,
    /// The test's container: a name of its own, since tests run at once and a
    /// container's cgroup is named after it.
    name: &'static str,
}

impl std::ops::Deref for Env {
    type Target = common::Rcompose;
    fn deref(&self) -> &common::Rcompose {
        &self.cli
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = self.rcompose(&["container", "rm", "--force", self.name]);
    }
}

fn setup(name: &'static str) -> (TestRegistry, Env, String) {
    assert!(testing::is_root(), "this test needs root");
    let registry = TestRegistry::start(true).unwrap();
    let image = registry.push_busybox("test/busybox:1", &[]).unwrap();
    let mut cli = common::Rcompose::new();
    let auth = cli.dir.path().join("auth.json");
    cli.env.push(("REGISTRY_AUTH_FILE", auth.clone()));
    (registry, Env { cli, auth, name }, image)
}

/// `setup`, with the image already pulled.
fn setup_pulled(name: &'static str) -> (TestRegistry, Env, String) {
    let (registry, env, image) = setup(name);
    registry.write_auth_file(&env.auth).unwrap();
    env.ok(&["image", "pull", "-q", &image]);
    (registry, env, image)
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_pull_without_credentials_fails_with_a_clear_error_and_succeeds_with_them() {
    let (registry, env, image) = setup("web");
    let out = env.rcompose(&["image", "pull", &image]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("failed to pull {image}")),
        "{stderr}"
    );
    registry.write_auth_file(&env.auth).unwrap();
    let pulled = env.ok(&["image", "pull", "-q", &image]);
    assert!(pulled.is_empty());
    let listed = env.ok(&["image", "ls"]);
    assert!(listed.contains(&image), "{listed}");
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_container_runs_logs_execs_stops_and_is_removed_with_its_image() {
    let (registry, env, image) = setup("web");
    registry.write_auth_file(&env.auth).unwrap();
    let script = "echo hello; echo to-stderr >&2; sleep 600";
    env.ok(&[
        "container",
        "run",
        "--name",
        "web",
        &image,
        "sh",
        "-c",
        script,
    ]);
    let logs = env.ok(&["container", "logs", "web"]);
    let logs = if logs.is_empty() {
        env.ok(&["container", "logs", "web"])
    } else {
        logs
    };
    assert!(logs.contains("hello\n"), "{logs}");
    let stamped = env.ok(&["container", "logs", "--timestamps", "--tail", "1", "web"]);
    assert_eq!(stamped.lines().count(), 1, "{stamped}");
    assert!(stamped.starts_with("20"), "{stamped}");
    let exec = env.rcompose(&[
        "container",
        "exec",
        "web",
        "sh",
        "-c",
        "echo in-$(hostname); exit 4",
    ]);
    assert_eq!(exec.status.code(), Some(4));
    assert!(
        String::from_utf8_lossy(&exec.stdout).starts_with("in-"),
        "{exec:?}"
    );
    let listed = env.ok(&["container", "ls"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("web ") && l.contains("running")),
        "{listed}"
    );
    // Once the run started, its monitor became the small `rcompose-monitor`
    // beside the binary, with the same pid and the container still its child.
    let running: serde_json::Value =
        serde_json::from_str(&env.ok(&["container", "inspect", "web"])).unwrap();
    let monitor = running["state"]["monitor_pid"].as_i64().unwrap();
    let exe = std::fs::read_link(format!("/proc/{monitor}/exe")).unwrap();
    assert_eq!(
        exe.file_name().unwrap(),
        "rcompose-monitor",
        "{}",
        exe.display()
    );
    let pid = running["state"]["pid"].as_i64().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid = stat.rsplit(") ").next().unwrap().split(' ').nth(1).unwrap();
    assert_eq!(ppid, monitor.to_string());
    let stats = env.ok(&["container", "stats", "web"]);
    assert!(
        stats.lines().nth(1).is_some_and(|l| l.starts_with("web")),
        "{stats}"
    );
    env.ok(&["container", "stop", "-t", "1", "web"]);
    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["container", "inspect", "web"])).unwrap();
    assert_eq!(inspect["state"]["status"], "exited");
    assert_eq!(inspect["state"]["exit_code"], 137);
    let refused = env.rcompose(&["image", "rm", &image]);
    assert!(
        !refused.status.success(),
        "an image in use must not be removed"
    );
    env.ok(&["container", "rm", "web"]);
    env.ok(&["image", "rm", &image]);
    let pruned = env.ok(&["image", "prune"]);
    assert!(pruned.starts_with("Deleted "), "{pruned}");
    for dir in ["layers", "blobs/sha256"] {
        let path = env.dir.path().join("state/images").join(dir);
        assert_eq!(
            std::fs::read_dir(&path).unwrap().count(),
            0,
            "{dir} not pruned"
        );
    }
    assert!(!Path::new(&env.dir.path().join("state/containers/web")).exists());
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn exec_runs_as_the_containers_user_and_directory_unless_told_otherwise() {
    let (_registry, env, image) = setup_pulled("exec-user");
    let out = env.rcompose(&[
        "container",
        "create",
        "--name",
        "exec-user",
        "--user",
        "nobody",
        &image,
        "sleep",
        "600",
    ]);
    assert!(out.status.success(), "{out:?}");
    env.ok(&["container", "start", "exec-user"]);
    let default = env.ok(&["container", "exec", "exec-user", "id", "-u"]);
    assert_eq!(default.trim(), "65534");
    let root = env.ok(&[
        "container",
        "exec",
        "--user",
        "root",
        "exec-user",
        "sh",
        "-c",
        "id -u; pwd",
    ]);
    assert_eq!(root, "0\n/\n");
    let missing = env.rcompose(&["container", "exec", "--user", "ghost", "exec-user", "true"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("ghost"),
        "{missing:?}"
    );
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn an_exec_gets_the_containers_seccomp_filter_and_capabilities() {
    let (_registry, env, image) = setup_pulled("exec-seccomp");
    env.ok(&[
        "container",
        "run",
        "--name",
        "exec-seccomp",
        &image,
        "sleep",
        "600",
    ]);
    let status = |user: &str, pid: &str| {
        let file = format!("/proc/{pid}/status");
        let args = [
            "container",
            "exec",
            "--user",
            user,
            "exec-seccomp",
            "grep",
            "-E",
        ];
        let pattern = "^(Cap(Prm|Eff|Bnd)|Seccomp):";
        env.ok(&[&args[..], &[pattern, file.as_str()]].concat())
    };
    let docker = "CapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\n\
                  CapBnd:\t00000000a80425fb\nSeccomp:\t2\n";
    assert_eq!(status("root", "1"), docker, "the container's process");
    assert_eq!(status("root", "self"), docker, "an exec");
    let nobody = "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n\
                  CapBnd:\t00000000a80425fb\nSeccomp:\t2\n";
    assert_eq!(status("65534", "self"), nobody, "an exec as another user");
}
