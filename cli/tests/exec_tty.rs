//! `rcompose container exec -t [-i]` end to end: the command gets a
//! pseudo-terminal made inside the container, its output comes back through
//! the master, stdin is forwarded only with `-i`, and the exit status is the
//! command's. The test's own stdin is not a terminal, as in CI. Root tests:
//! `#[ignore]`d so that a non-root run reports them as skipped;
//! `scripts/test.sh` runs them when root.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use rcompose_runtime::testing::{self, TestRegistry};

/// A running busybox container, removed on drop.
struct Container {
    dir: tempfile::TempDir,
    auth: std::path::PathBuf,
    name: &'static str,
    _registry: TestRegistry,
}

impl Container {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rcompose"));
        command
            .args(args)
            .env("RCOMPOSE_ROOT", self.dir.path().join("state"))
            .env("RCOMPOSE_RUN_DIR", self.dir.path().join("run"))
            .env("REGISTRY_AUTH_FILE", &self.auth);
        command
    }

    fn rcompose(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// `container exec <flags> NAME <command>` with stdin from /dev/null.
    fn exec(&self, flags: &[&str], command: &[&str]) -> Output {
        let mut args = vec!["container", "exec"];
        args.extend(flags);
        args.push(self.name);
        args.extend(command);
        self.command(&args).stdin(Stdio::null()).output().unwrap()
    }

    /// What is left of exec's files: console sockets and libcontainer leftovers.
    fn leftovers(&self) -> Vec<String> {
        let run = self.dir.path().join("run");
        let dirs = [run.join("tty"), run.join("oci").join(self.name)];
        let names = dirs
            .iter()
            .filter_map(|dir| std::fs::read_dir(dir).ok())
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned());
        names
            .filter(|n| {
                ["tty-", "tenant-tty-", "exec-process-"]
                    .iter()
                    .any(|p| n.starts_with(p))
            })
            .collect()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.rcompose(&["container", "rm", "--force", self.name]);
    }
}

fn start(name: &'static str) -> Container {
    assert!(testing::is_root(), "this test needs root");
    let registry = TestRegistry::start(true).unwrap();
    let image = registry.push_busybox("test/busybox:1", &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth.json");
    registry.write_auth_file(&auth).unwrap();
    let container = Container {
        dir,
        auth,
        name,
        _registry: registry,
    };
    let run = container.rcompose(&["container", "run", "--name", name, &image, "sleep", "600"]);
    assert!(run.status.success(), "run failed: {run:?}");
    container
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn exec_with_tty_gives_the_command_a_terminal_and_returns_its_exit_status() {
    let container = start("exec-tty-a");

    let tty = container.exec(&["-t"], &["tty"]);
    assert_eq!(tty.status.code(), Some(0), "{tty:?}");
    assert!(stdout(&tty).starts_with("/dev/pts/"), "{tty:?}");
    assert!(
        stdout(&tty).ends_with("\r\n"),
        "output goes through a tty: {tty:?}"
    );

    let test = container.exec(&["-t"], &["sh", "-c", "test -t 1 && echo is-a-tty"]);
    assert_eq!(test.status.code(), Some(0), "{test:?}");
    assert_eq!(stdout(&test).trim_end(), "is-a-tty");

    let term = container.exec(&["-t"], &["sh", "-c", "echo $TERM; exit 3"]);
    assert_eq!(term.status.code(), Some(3), "{term:?}");
    assert_eq!(stdout(&term).trim_end(), "xterm");

    let plain = container.exec(&[], &["sh", "-c", "test -t 1 || echo no-tty"]);
    assert_eq!(stdout(&plain), "no-tty\n", "{plain:?}");

    assert_eq!(container.leftovers(), Vec::<String>::new());
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn exec_with_tty_and_interactive_forwards_stdin_until_it_ends() {
    let container = start("exec-tty-b");
    let mut child = container
        .command(&["container", "exec", "-t", "-i", container.name, "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"through-the-pty\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // The terminal echoes the line, then cat prints it; ^D at the end of
    // stdin ended cat's input.
    assert_eq!(stdout(&out), "through-the-pty\r\nthrough-the-pty\r\n");
}
