//! Every stack in `examples/` comes up with `up -d --wait` and goes away
//! with `down -v`, on the image `scripts/example-image.sh` makes from the
//! host's busybox (no registry involved), the way the README's first
//! command runs them. Runs in a fresh network namespace with a private state
//! root. Root test: `#[ignore]`d so that a non-root run reports it as
//! skipped; `scripts/test.sh` runs it when root.

use std::path::PathBuf;

use rcompose_netctl::testing::{ThreadNetns, assert_no_links_or_table_of_ours, http_get, run};

mod common;

/// `down -v` of every example however the test ends.
struct Examples {
    cli: common::Rcompose,
    files: Vec<String>,
}

impl Drop for Examples {
    fn drop(&mut self) {
        for file in &self.files {
            let _ = self.cli.rcompose(&["down", "-v", "-t", "1", "-f", file]);
        }
    }
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn every_example_comes_up_and_goes_down() {
    assert!(rcompose_runtime::testing::is_root(), "this test needs root");
    let _netns = ThreadNetns::enter_new().unwrap();
    run(&["ip", "link", "set", "lo", "up"]);
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cli = common::Rcompose::new();
    let made = std::process::Command::new(repo.join("scripts/example-image.sh"))
        .arg(env!("CARGO_BIN_EXE_rcompose"))
        .env("RCOMPOSE_ROOT", cli.dir.path().join("state"))
        .env("RCOMPOSE_RUN_DIR", cli.dir.path().join("run"))
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let files: Vec<String> = rcompose_examples::EXAMPLES
        .iter()
        .map(|e| {
            repo.join("examples")
                .join(e)
                .join("compose.yaml")
                .display()
                .to_string()
        })
        .collect();
    let env = Examples { cli, files };
    for (example, file) in rcompose_examples::EXAMPLES.iter().zip(&env.files) {
        env.cli.ok(&[
            "up",
            "-d",
            "--wait",
            "--wait-timeout",
            "90",
            "--progress",
            "quiet",
            "-f",
            file,
        ]);
        let ps: Vec<serde_json::Value> =
            serde_json::from_str(&env.cli.ok(&["ps", "--all", "--format", "json", "-f", file]))
                .unwrap();
        assert!(!ps.is_empty(), "{example}: no containers");
        for c in &ps {
            let ok = c["State"] == "running" || (c["State"] == "exited" && c["ExitCode"] == 0);
            assert!(ok, "{example}: {c}");
        }
        if *example == "webapp" {
            let page = http_get("127.0.0.1:18080".parse().unwrap()).unwrap();
            assert!(page.contains("Hello from rcompose"), "{page}");
        }
        let plan = env
            .cli
            .rcompose(&["plan", "--detailed-exitcode", "-f", file]);
        assert_eq!(
            plan.status.code(),
            Some(0),
            "{example}: not converged: {}",
            String::from_utf8_lossy(&plan.stdout)
        );
        env.cli
            .ok(&["down", "-v", "-t", "1", "--progress", "quiet", "-f", file]);
        let left: Vec<serde_json::Value> =
            serde_json::from_str(&env.cli.ok(&["ps", "--all", "--format", "json", "-f", file]))
                .unwrap();
        assert!(left.is_empty(), "{example}: left {left:?}");
    }
    assert_no_links_or_table_of_ours();
}
