//! Every example stack validates through the real binary, from its own
//! directory, the way a user runs `rcompose config` there.

use assert_cmd::Command;
use predicates::prelude::*;
use rcompose_tests::{rcompose_bin, repo_root};

fn rcompose() -> Command {
    let bin = rcompose_bin();
    assert!(
        bin.exists(),
        "{} is not built: run the suite with `cargo test --workspace --all-targets`",
        bin.display()
    );
    let mut cmd = Command::new(bin);
    cmd.env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROJECT_NAME")
        .env_remove("COMPOSE_PROFILES");
    cmd
}

#[test]
fn every_example_validates_from_its_own_directory() {
    let examples = repo_root().join("examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join("compose.yaml").exists() {
            continue;
        }
        rcompose()
            .current_dir(&dir)
            .args(["config", "-q"])
            .assert()
            .success();
        seen += 1;
    }
    assert!(seen >= 5, "only {seen} examples found");
}

#[test]
fn a_stack_with_an_error_changes_nothing_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  web:\n    image: nginx\n    portz: [80]\n",
    )
    .unwrap();
    rcompose()
        .current_dir(dir.path())
        .arg("config")
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(
            "compose.yaml:4:5: services.web: unknown key `portz`",
        ))
        .stderr(predicate::str::contains("did you mean `ports`?"));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "the failed run wrote files");
}
