//! The global parts of the `rcompose` command line, none needing root:
//! shell completions, man pages, `--log-level`, and how errors are reported
//! (text, JSON, stack-file positions).

use std::path::Path;
use std::process::{Command, Output};

/// Runs `rcompose ARGS` in `dir`, with the state root and run directory
/// inside it so that nothing touches /var/lib or /run.
fn rcompose_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rcompose"))
        .args(args)
        .current_dir(dir)
        .env("RCOMPOSE_ROOT", dir.join("state"))
        .env("RCOMPOSE_RUN_DIR", dir.join("run"))
        .env_remove("RCOMPOSE_LOG")
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROJECT_NAME")
        .env_remove("COMPOSE_PROFILES")
        .output()
        .expect("the rcompose binary runs")
}

/// Runs `rcompose ARGS` in a fresh temporary directory.
fn rcompose(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    rcompose_in(dir.path(), args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn bash_completion_names_the_commands_but_not_the_hidden_ones() {
    let out = rcompose(&["completion", "bash"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let script = text(&out.stdout);
    assert!(script.contains("rcompose"), "{script}");
    assert!(script.contains("up"), "{script}");
    assert!(script.contains("plan"), "{script}");
    assert!(!script.contains("__monitor"), "{script}");
    assert!(!script.contains("__dns"), "{script}");
}

#[test]
fn every_shell_has_a_completion_script_and_an_unknown_one_is_a_usage_error() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = rcompose(&["completion", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        assert!(!out.stdout.is_empty(), "{shell}: empty script");
    }
    assert_eq!(rcompose(&["completion", "tcsh"]).status.code(), Some(2));
}

#[test]
fn man_prints_a_roff_page_of_rcompose() {
    let out = rcompose(&["man"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{page}");
    assert!(page.contains(".TH rcompose 1"), "{page}");
    assert!(page.contains("plan"), "{page}");
    assert!(!page.contains("__monitor"), "{page}");
}

#[test]
fn man_dir_writes_one_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man/man1");
    let out = rcompose_in(dir.path(), &["man", "--dir", pages.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for page in [
        "rcompose.1",
        "rcompose-up.1",
        "rcompose-plan.1",
        "rcompose-image-pull.1",
    ] {
        assert!(pages.join(page).is_file(), "{page} was not written");
    }
    let up = std::fs::read_to_string(pages.join("rcompose-up.1")).unwrap();
    assert!(up.contains(".TH rcompose-up 1"), "{up}");
    assert!(up.contains("detach"), "{up}");
    let names: Vec<String> = std::fs::read_dir(&pages)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains("__") || n.ends_with("-help.1")),
        "{names:?}"
    );
}

#[test]
fn an_unknown_log_level_is_a_usage_error() {
    let out = rcompose(&["--log-level", "bogus", "schema"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("bogus"), "{}", text(&out.stderr));
}

#[test]
fn every_log_level_is_accepted_before_or_after_the_command() {
    for level in ["error", "warn", "info", "debug", "trace"] {
        let out = rcompose(&["--log-level", level, "schema"]);
        assert_eq!(out.status.code(), Some(0), "{level}: {}", text(&out.stderr));
        let out = rcompose(&["schema", "--log-level", level]);
        assert_eq!(out.status.code(), Some(0), "{level}: {}", text(&out.stderr));
    }
}

#[test]
fn an_error_is_json_when_json_output_was_asked_for() {
    let out = rcompose(&["plan", "--format", "json", "-f", "/nonexistent.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let error: serde_json::Value = serde_json::from_slice(&out.stderr)
        .unwrap_or_else(|e| panic!("stderr is not JSON ({e}): {}", text(&out.stderr)));
    let message = error["error"].as_str().expect("an \"error\" string");
    assert!(!message.is_empty());
    assert!(error["causes"].is_array(), "{error}");
    let all = format!("{error}");
    assert!(all.contains("nonexistent.yaml"), "{all}");
}

#[test]
fn progress_is_taken_before_the_command_as_compose_takes_it_or_after_it() {
    // `docker compose --progress json down`: the error is JSON too.
    for args in [
        ["--progress", "json", "down", "-f", "/nonexistent.yaml"],
        ["down", "--progress", "json", "-f", "/nonexistent.yaml"],
        ["--progress", "json", "up", "-f", "/nonexistent.yaml"],
        ["apply", "--progress", "json", "--", "/nonexistent.yaml"],
    ] {
        let out = rcompose(&args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let error: serde_json::Value = serde_json::from_slice(&out.stderr)
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", text(&out.stderr)));
        assert!(
            format!("{error}").contains("nonexistent.yaml"),
            "{args:?}: {error}"
        );
    }
    let out = rcompose(&["--progress", "plain", "down", "-f", "/nonexistent.yaml"]);
    assert!(
        text(&out.stderr).starts_with("error: "),
        "{}",
        text(&out.stderr)
    );
    let out = rcompose(&["--progress", "bogus", "down"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn an_error_is_text_otherwise() {
    let out = rcompose(&["plan", "-f", "/nonexistent.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("nonexistent.yaml"), "{stderr}");
}

#[test]
fn an_invalid_stack_file_exits_1_pointing_at_the_error() {
    let dir = tempfile::tempdir().unwrap();
    // The bad port is on line 5, its value starting at column 9.
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  web:\n    image: nginx\n    ports:\n      - \"80:80:80:80\"\n",
    )
    .unwrap();
    let out = rcompose_in(dir.path(), &["-f", "compose.yaml", "plan"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("compose.yaml:5:9"), "{stderr}");
    assert!(stderr.contains("80:80:80:80"), "{stderr}");
}

#[test]
fn an_invalid_stack_file_with_json_output_gets_its_diagnostics_in_the_json_error() {
    let dir = tempfile::tempdir().unwrap();
    // Two problems: unknown keys on lines 4 and 6.
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  web:\n    image: nginx\n    imagee: typo\n    restart: always\n    portz: []\n",
    )
    .unwrap();
    let out = rcompose_in(
        dir.path(),
        &["-f", "compose.yaml", "plan", "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    // Nothing but the one JSON object: no text diagnostics before it.
    let error: serde_json::Value = serde_json::from_slice(&out.stderr)
        .unwrap_or_else(|e| panic!("stderr is not one JSON object ({e}): {}", text(&out.stderr)));
    assert_eq!(
        error["error"], "the stack file is invalid; nothing was changed",
        "{error}"
    );
    let diagnostics = error["diagnostics"]
        .as_array()
        .expect("a diagnostics array");
    let places: Vec<(u64, &str)> = diagnostics
        .iter()
        .map(|d| {
            let file = d["file"].as_str().expect("a file");
            assert!(file.ends_with("/compose.yaml"), "{d}");
            (d["line"].as_u64().unwrap(), d["message"].as_str().unwrap())
        })
        .collect();
    assert_eq!(places.len(), 2, "{error}");
    assert_eq!(places[0].0, 4, "{error}");
    assert_eq!(places[1].0, 6, "{error}");
    assert!(diagnostics[1]["column"].as_u64().is_some(), "{error}");

    // The same file in text: every diagnostic with its place, then the error.
    let out = rcompose_in(dir.path(), &["-f", "compose.yaml", "plan"]);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("compose.yaml:4:"), "{stderr}");
    assert!(stderr.contains("compose.yaml:6:"), "{stderr}");
    assert!(
        stderr
            .trim_end()
            .ends_with("error: the stack file is invalid; nothing was changed"),
        "{stderr}"
    );
}
