//! What the root tests of the `rcompose` binary share: the binary run in a
//! temporary directory of the test's own, which holds its state root and
//! run directory.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The binary against a private state root.
pub struct Rcompose {
    /// Working directory, state root (`state/`) and run directory (`run/`).
    pub dir: tempfile::TempDir,
    /// Extra environment for every run.
    pub env: Vec<(&'static str, PathBuf)>,
}

impl Rcompose {
    /// A fresh temporary directory.
    pub fn new() -> Rcompose {
        Rcompose {
            dir: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        }
    }

    /// Runs `rcompose ARGS` from the temporary directory.
    pub fn rcompose(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_rcompose"))
            .args(args)
            .current_dir(self.dir.path())
            .env("RCOMPOSE_ROOT", self.dir.path().join("state"))
            .env("RCOMPOSE_RUN_DIR", self.dir.path().join("run"))
            .envs(self.env.iter().map(|(k, v)| (*k, v)))
            .output()
            .unwrap()
    }

    /// Runs `rcompose ARGS`, asserts success, returns standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.rcompose(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "rcompose {args:?} failed: {stderr}");
        String::from_utf8(out.stdout).unwrap()
    }
}

/// A registry on 127.0.0.1 serving busybox with `body` at
/// `/www/index.html` as `repo`, already pulled into a fresh `Rcompose`.
pub fn with_web_image(
    repo: &str,
    body: &[u8],
) -> (rcompose_runtime::testing::TestRegistry, Rcompose, String) {
    assert!(rcompose_runtime::testing::is_root(), "this test needs root");
    let registry = rcompose_runtime::testing::TestRegistry::start(false).unwrap();
    let page = ("www/index.html".to_string(), body.to_vec(), 0o644);
    let image = registry.push_busybox(repo, &[page]).unwrap();
    let cli = Rcompose::new();
    cli.ok(&["image", "pull", "-q", &image]);
    (registry, cli, image)
}

impl Rcompose {
    /// `container inspect NAME` as JSON, `None` when it fails.
    pub fn inspect(&self, name: &str) -> Option<serde_json::Value> {
        let out = self.rcompose(&["container", "inspect", name]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap())
    }

    /// Starts `rcompose ARGS` in the background, its standard output into
    /// `log`, its standard error discarded.
    pub fn spawn(&self, args: &[&str], log: &std::path::Path) -> std::process::Child {
        Command::new(env!("CARGO_BIN_EXE_rcompose"))
            .args(args)
            .current_dir(self.dir.path())
            .env("RCOMPOSE_ROOT", self.dir.path().join("state"))
            .env("RCOMPOSE_RUN_DIR", self.dir.path().join("run"))
            .stdout(std::fs::File::create(log).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }
}

/// A background rcompose (a controller), killed by its pid and reaped on
/// drop; then `down` runs with these arguments and leftovers are pruned.
pub struct Controller {
    /// The controller process, if one was started.
    pub child: Option<std::process::Child>,
    /// The binary and its state.
    pub cli: Rcompose,
    /// Arguments of the `down` that cleans up (`["down", "-v", …]`).
    pub down: Vec<String>,
}

impl Controller {
    /// Starts `rcompose watch --resync 2 --debounce 200 EXTRA… -f FILE`,
    /// its output into `log`; dropping it runs `down -v -t 1 -f FILE`.
    pub fn watch(cli: Rcompose, file: &str, extra: &[&str], log: &std::path::Path) -> Controller {
        let mut args = vec!["watch", "--resync", "2", "--debounce", "200"];
        args.extend_from_slice(extra);
        args.extend(["-f", file]);
        let child = cli.spawn(&args, log);
        Controller {
            child: Some(child),
            cli,
            down: ["down", "-v", "-t", "1", "-f", file]
                .map(String::from)
                .to_vec(),
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let args: Vec<&str> = self.down.iter().map(String::as_str).collect();
        let _ = self.cli.rcompose(&args);
        let _ = self.cli.rcompose(&["network", "prune"]);
        let _ = self.cli.rcompose(&["volume", "prune", "--all"]);
    }
}

/// Waits up to 30 s for `check` to hold, else panics naming `what`.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("timed out waiting until {what}");
}
