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
