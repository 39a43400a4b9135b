//! The `rcompose` binary as a user runs it: exit codes, output, help.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn rcompose() -> Command {
    let mut cmd = Command::cargo_bin("rcompose").unwrap();
    cmd.env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROJECT_NAME")
        .env_remove("COMPOSE_PROFILES");
    cmd
}

#[test]
fn config_prints_the_normalized_example_as_yaml() {
    let out = rcompose()
        .args(["-f", "examples/webapp/compose.yaml", "config"])
        .current_dir(repo())
        .env("DB_PASSWORD", "pw")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let text = text.replace(&repo().display().to_string(), "<repo>");
    insta::assert_snapshot!("config_webapp_yaml", text);
}

#[test]
fn config_json_and_listing_flags_work() {
    let out = rcompose()
        .args([
            "-f",
            "examples/webapp/compose.yaml",
            "config",
            "--format",
            "json",
        ])
        .current_dir(repo())
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json["name"], "webapp");
    assert_eq!(json["networks"]["back"]["name"], "webapp_back");
    rcompose()
        .args(["-f", "examples/webapp/compose.yaml", "config", "--services"])
        .current_dir(repo())
        .assert()
        .success()
        .stdout("web\ndb\ncache\n");
    rcompose()
        .args([
            "-f",
            "examples/profiles/compose.yaml",
            "config",
            "--profiles",
        ])
        .current_dir(repo())
        .assert()
        .success()
        .stdout("debug\nmonitoring\n");
    rcompose()
        .args([
            "-f",
            "examples/webapp/compose.yaml",
            "config",
            "--hash",
            "db",
        ])
        .current_dir(repo())
        .assert()
        .success()
        .stdout(predicate::str::is_match("^db [0-9a-f]{64}\n$").unwrap());
}

#[test]
fn an_invalid_file_exits_1_with_every_error_and_prints_nothing_on_stdout() {
    rcompose()
        .args([
            "-f",
            "spec/tests/invalid/26-several-errors-at-once.yml",
            "config",
        ])
        .current_dir(repo())
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(
            "26-several-errors-at-once.yml:3:5",
        ))
        .stderr(predicate::str::contains(
            "26-several-errors-at-once.yml:4:5",
        ))
        .stderr(predicate::str::contains(
            "26-several-errors-at-once.yml:7:5",
        ));
}

#[test]
fn quiet_config_validates_without_output() {
    rcompose()
        .args(["-f", "examples/healthchain/compose.yaml", "config", "-q"])
        .current_dir(repo())
        .assert()
        .success()
        .stdout("");
}

#[test]
fn the_committed_schema_is_the_output_of_rcompose_schema() {
    let out = rcompose()
        .arg("schema")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let committed = std::fs::read_to_string(repo().join("schema/rcompose.schema.json"))
        .expect("schema/rcompose.schema.json is committed");
    assert!(
        String::from_utf8(out).unwrap() == committed,
        "schema/rcompose.schema.json is stale: run `rcompose schema > schema/rcompose.schema.json`"
    );
}

#[test]
fn version_and_help_work_on_every_command() {
    rcompose()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("rcompose "));
    for cmd in [
        vec!["--help"],
        vec!["config", "--help"],
        vec!["schema", "--help"],
    ] {
        rcompose()
            .args(&cmd)
            .assert()
            .success()
            .stdout(predicate::str::contains("Usage"));
    }
}
