//! `rcompose up`, `plan`, `down` and `ps` end to end on a real host: a
//! three-service stack (a web server serving a page from a named volume, a
//! client that reaches it by name, a one-shot job that seeds the volume)
//! from an image pulled from a registry on 127.0.0.1. Each test runs in a
//! fresh network namespace entered after the pull, so nothing touches the
//! host's links or firewall. Root tests: `#[ignore]`d so that a non-root run
//! reports them as skipped; `scripts/test.sh` runs them when root.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use rcompose_netctl::testing::{ThreadNetns, assert_no_links_or_table_of_ours, run};

mod common;

/// The binary, and `down -v` of the project however the test ends.
struct Env {
    cli: common::Rcompose,
    file: String,
}

impl std::ops::Deref for Env {
    type Target = common::Rcompose;
    fn deref(&self) -> &common::Rcompose {
        &self.cli
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = self.rcompose(&["down", "-v", "-f", &self.file, "-t", "1"]);
        let _ = self.rcompose(&["network", "prune"]);
        let _ = self.rcompose(&["volume", "prune", "--all"]);
    }
}

impl Env {
    fn new(cli: common::Rcompose, yaml: &str) -> Env {
        let file = cli.dir.path().join("compose.yaml");
        std::fs::write(&file, yaml).unwrap();
        Env {
            cli,
            file: file.display().to_string(),
        }
    }

    /// `rcompose ARGS -f FILE`, asserting success.
    fn stack(&self, args: &[&str]) -> String {
        let mut full = args.to_vec();
        full.extend(["-f", &self.file]);
        self.ok(&full)
    }

    /// `plan --detailed-exitcode -f FILE`: its exit code and its text.
    fn plan_exit(&self) -> (Option<i32>, String) {
        let out = self.rcompose(&["plan", "--detailed-exitcode", "-f", &self.file]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code(), text)
    }

    fn ps(&self) -> Vec<serde_json::Value> {
        let out = self.stack(&["ps", "--all", "--format", "json"]);
        serde_json::from_str::<Vec<serde_json::Value>>(&out).unwrap()
    }

    fn edit(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(&self.file).unwrap();
        assert!(text.contains(from));
        std::fs::write(&self.file, text.replace(from, to)).unwrap();
    }

    fn started_at(&self, name: &str) -> String {
        let info: serde_json::Value =
            serde_json::from_str(&self.ok(&["container", "inspect", name])).unwrap();
        info["state"]["started_at"].as_str().unwrap().to_string()
    }
}

fn get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

fn stack_yaml(image: &str, port: u16) -> String {
    format!(
        r#"name: e2e
services:
  init:
    image: {image}
    command: ["sh", "-c", "echo seeded > /www/seed.txt"]
    volumes: [site:/www]
  web:
    image: {image}
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    environment:
      GREETING: one
    ports: ["127.0.0.1:{port}:80"]
    volumes: [site:/www]
    depends_on:
      init:
        condition: service_completed_successfully
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]
      interval: 1s
      retries: 30
  client:
    image: {image}
    command: ["sh", "-c", "while true; do wget -q -O /tmp/page http://web/ && mv /tmp/page /tmp/ok; sleep 1; done"]
    stop_grace_period: 1s
    depends_on:
      web:
        condition: service_healthy
volumes:
  site: {{}}
"#
    )
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn up_plan_recreate_and_down_on_a_three_service_stack() {
    let (_registry, cli, image) = common::with_web_image("test/stack:1", b"from the image");
    let _netns = ThreadNetns::enter_new().unwrap();
    run(&["ip", "link", "set", "lo", "up"]);
    let port = 18081;
    let env = Env::new(cli, &stack_yaml(&image, port));

    // Up: the job ran to completion, web is healthy, the client is running.
    env.stack(&["up", "-d", "--wait", "--wait-timeout", "60"]);
    let ps = env.ps();
    let by_service = |s: &str| ps.iter().find(|c| c["Service"] == s).unwrap().clone();
    assert_eq!(by_service("init")["State"], "exited");
    assert_eq!(by_service("init")["ExitCode"], 0);
    assert_eq!(by_service("web")["Health"], "healthy");
    assert_eq!(by_service("client")["State"], "running");
    assert_eq!(by_service("web")["Publishers"][0]["PublishedPort"], port);
    let table = env.stack(&["ps"]);
    assert!(
        table.contains("e2e-web-1") && table.contains("e2e-client-1"),
        "{table}"
    );
    assert!(
        !table.contains("e2e-init-1"),
        "stopped containers only with --all: {table}"
    );

    // The published port answers on 127.0.0.1 with the page copied into the
    // volume from the image, and the file the job wrote.
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(get(addr, "/").ends_with("from the image"));
    assert!(get(addr, "/seed.txt").ends_with("seeded\n"));

    // The client reaches web by its service name.
    let mut reached = String::new();
    for _ in 0..100 {
        let out = env.rcompose(&["exec", "-f", &env.file, "client", "cat", "/tmp/ok"]);
        reached = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(reached, "from the image");
    env.stack(&["exec", "web", "sh", "-c", "echo kept > /www/kept.txt"]);

    // Nothing to do on a converged host.
    let (code, text) = env.plan_exit();
    assert_eq!(code, Some(0), "{text}");

    // Edit web's environment: the plan names exactly that change.
    env.edit("GREETING: one", "GREETING: two");
    let (code, text) = env.plan_exit();
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("environment.GREETING"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&env.stack(&["plan", "--format", "json"])).unwrap();
    let ids: Vec<&str> = json["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.iter().all(|id| id.starts_with("service:web")),
        "only web changes: {json}"
    );

    // Up recreates only web; the volume's data survives.
    let client_started = env.started_at("e2e-client-1");
    let web_started = env.started_at("e2e-web-1");
    env.stack(&["up", "-d", "--wait", "--wait-timeout", "60"]);
    assert_eq!(env.started_at("e2e-client-1"), client_started);
    assert_ne!(env.started_at("e2e-web-1"), web_started);
    let env_out = env.stack(&["exec", "web", "sh", "-c", "echo $GREETING"]);
    assert_eq!(env_out.trim(), "two");
    assert!(get(addr, "/kept.txt").ends_with("kept\n"));
    let (code, text) = env.plan_exit();
    assert_eq!(code, Some(0), "{text}");

    // Down removes everything but the named volume; down -v removes it.
    env.stack(&["down", "-t", "1"]);
    assert!(env.ps().is_empty());
    assert!(!env.ok(&["network", "ls"]).contains("e2e_default"));
    // The network went alongside its containers' removals: nothing of it
    // is left in the state, moved aside or not.
    let networks = env.dir.path().join("state/networks");
    let left: Vec<String> = std::fs::read_dir(&networks)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("e2e"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(env.ok(&["volume", "ls"]).contains("e2e_site"));
    env.stack(&["down", "-v"]);
    assert!(!env.ok(&["volume", "ls"]).contains("e2e_site"));
    assert_no_links_or_table_of_ours();
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_bad_stack_file_is_an_error_with_its_position_and_creates_nothing() {
    let (_registry, cli, image) = common::with_web_image("test/stack:bad", b"x");
    let _netns = ThreadNetns::enter_new().unwrap();
    let yaml = format!(
        "name: bad\nservices:\n  web:\n    image: {image}\n    ports: [\"80:80:80:80\"]\n    volumes: [data:/d]\nvolumes:\n  data: {{}}\n"
    );
    let env = Env::new(cli, &yaml);
    let out = env.rcompose(&["up", "-d", "-f", &env.file]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("compose.yaml:5:"), "{stderr}");
    assert!(env.ok(&["container", "ls", "--json"]).trim() == "[]");
    assert!(!env.ok(&["volume", "ls"]).contains("bad_data"));
    assert!(!env.ok(&["network", "ls"]).contains("bad_default"));
}

/// Processes whose command line mentions `dir` (monitors, DNS servers of
/// this test's state root).
fn processes_under(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        if text.contains(&needle) || String::from_utf8_lossy(&environ).contains(&needle) {
            out.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
        }
    }
    out
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn up_killed_mid_apply_converges_on_the_next_up_and_down_leaks_nothing() {
    let (_registry, cli, image) = common::with_web_image("test/stack:kill", b"x");
    let _netns = ThreadNetns::enter_new().unwrap();
    run(&["ip", "link", "set", "lo", "up"]);
    let mut yaml = String::from("name: killed\nservices:\n");
    for i in 0..10 {
        yaml.push_str(&format!(
            "  s{i}:\n    image: {image}\n    command: [\"sleep\", \"600\"]\n    init: true\n    volumes: [\"d{i}:/d\", \"/anon\"]\n"
        ));
    }
    yaml.push_str("volumes:\n");
    for i in 0..10 {
        yaml.push_str(&format!("  d{i}: {{}}\n"));
    }
    let env = Env::new(cli, &yaml);
    let state = env.dir.path().join("state");

    // Killed after 2, 5 and 8 container directories exist: each time the
    // next `up` converges.
    for threshold in [2, 5, 8] {
        env.stack(&["down", "-v", "-t", "1"]);
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rcompose"))
            .args(["up", "-d", "--parallel", "2", "-f", &env.file])
            .current_dir(env.dir.path())
            .env("RCOMPOSE_ROOT", &state)
            .env("RCOMPOSE_RUN_DIR", env.dir.path().join("run"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let containers = state.join("containers");
        for _ in 0..400 {
            let made = std::fs::read_dir(&containers)
                .map(|d| d.count())
                .unwrap_or(0);
            if made >= threshold {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap();
        child.wait().unwrap();

        env.stack(&["up", "-d", "--wait", "--wait-timeout", "60"]);
        let ps = env.ps();
        assert_eq!(ps.len(), 10, "{ps:?}");
        assert!(ps.iter().all(|c| c["State"] == "running"), "{ps:?}");
        let (code, text) = env.plan_exit();
        assert_eq!(code, Some(0), "{text}");
    }

    env.stack(&["down", "-v", "--rmi", "all", "-t", "1"]);
    assert!(env.ps().is_empty());
    let images = env.ok(&["image", "ls"]);
    assert!(
        !images.contains("test/stack"),
        "--rmi all removes the image: {images}"
    );
    assert_no_links_or_table_of_ours();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = env.dir.path().display().to_string();
    assert!(
        !mounts.lines().any(|l| l.contains(&root)),
        "mounts left under {root}"
    );
    let left = processes_under(env.dir.path());
    assert!(left.is_empty(), "processes left: {left:?}");
    let volumes = env.ok(&["volume", "ls"]);
    assert!(!volumes.contains("killed_d"), "{volumes}");
    for cgroup_root in [
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup/unified",
    ] {
        let dir = Path::new(cgroup_root).join("rcompose");
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let ours: Vec<_> = entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("killed-"))
                .collect();
            assert!(ours.is_empty(), "cgroups left in {}", dir.display());
        }
    }
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn attached_up_streams_prefixed_logs_and_ctrl_c_stops_the_stack() {
    let (_registry, cli, image) = common::with_web_image("test/stack:attached", b"x");
    let _netns = ThreadNetns::enter_new().unwrap();
    run(&["ip", "link", "set", "lo", "up"]);
    let yaml = format!(
        "name: attached\nservices:\n  once:\n    image: {image}\n    command: [\"echo\", \"hello from once\"]\n"
    );
    let env = Env::new(cli, &yaml);
    // Attached, a stack whose only container exits returns when it exited.
    let out = env.stack(&["up", "--progress", "quiet"]);
    assert!(out.contains("attached-once-1 | hello from once"), "{out}");

    // A long-running service: Ctrl-C (SIGINT) stops it.
    let yaml = format!(
        "name: attached\nservices:\n  loop:\n    image: {image}\n    init: true\n    stop_grace_period: 1s\n    \
         command: [\"sh\", \"-c\", \"while true; do echo tick; sleep 0.2; done\"]\n"
    );
    std::fs::write(&env.file, yaml).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rcompose"))
        .args([
            "up",
            "--remove-orphans",
            "--progress",
            "quiet",
            "-f",
            &env.file,
        ])
        .current_dir(env.dir.path())
        .env("RCOMPOSE_ROOT", env.dir.path().join("state"))
        .env("RCOMPOSE_RUN_DIR", env.dir.path().join("run"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert!(line.contains("attached-loop-1 | tick"), "{line}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let ps = env.ps();
    let looping = ps.iter().find(|c| c["Service"] == "loop").unwrap();
    assert_eq!(looping["State"], "exited", "{ps:?}");
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn configs_and_secrets_arrive_with_owner_and_mode_and_a_content_change_recreates() {
    let (_registry, cli, image) = common::with_web_image("test/stack:files", b"x");
    let _netns = ThreadNetns::enter_new().unwrap();
    run(&["ip", "link", "set", "lo", "up"]);
    let yaml = format!(
        r#"name: files
services:
  app:
    image: {image}
    command: ["sleep", "600"]
    init: true
    stop_grace_period: 1s
    volumes: ["/anon"]
    configs:
      - source: site
        target: /etc/site.conf
    secrets:
      - source: token
        uid: "1234"
        gid: "1234"
        mode: 0400
  reader:
    image: {image}
    command: ["sleep", "600"]
    init: true
    stop_grace_period: 1s
    volumes_from: [app]
    depends_on: [app]
configs:
  site:
    content: "listen 80"
secrets:
  token:
    file: ./token.txt
"#
    );
    let env = Env::new(cli, &yaml);
    let token = env.dir.path().join("token.txt");
    std::fs::write(&token, "first").unwrap();
    env.stack(&["up", "-d", "--wait", "--wait-timeout", "60"]);
    let exec = |cmd: &str| env.stack(&["exec", "app", "sh", "-c", cmd]);
    assert_eq!(
        exec("stat -c '%a %u %g' /run/secrets/token").trim(),
        "400 1234 1234"
    );
    assert_eq!(exec("cat /run/secrets/token"), "first");
    assert_eq!(exec("cat /etc/site.conf"), "listen 80");
    assert!(exec("echo x > /run/secrets/token 2>&1 || echo refused").contains("refused"));
    exec("echo kept > /anon/data");
    // volumes_from shares app's anonymous volume, not its secrets.
    let reader = env.stack(&[
        "exec",
        "reader",
        "sh",
        "-c",
        "cat /anon/data; ls /run/secrets 2>&1 || true",
    ]);
    assert!(reader.starts_with("kept\n"), "{reader}");
    assert!(!reader.contains("token"), "{reader}");

    // A new secret content recreates the container; its anonymous volume stays.
    std::fs::write(&token, "second").unwrap();
    let (code, text) = env.plan_exit();
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("configs/secrets content"), "{text}");
    let before = env.started_at("files-app-1");
    env.stack(&["up", "-d", "--wait", "--wait-timeout", "60"]);
    assert_ne!(env.started_at("files-app-1"), before);
    assert_eq!(exec("cat /run/secrets/token"), "second");
    assert_eq!(exec("cat /anon/data"), "kept\n");

    // down -v removes the anonymous volume too.
    let anonymous = |env: &Env| {
        let ls: Vec<serde_json::Value> =
            serde_json::from_str(&env.ok(&["volume", "ls", "--json"])).unwrap();
        ls.iter()
            .filter(|v| v["labels"]["io.rcompose.container"] == "files-app-1")
            .count()
    };
    env.stack(&["down", "-t", "1"]);
    assert_eq!(anonymous(&env), 1, "down keeps the anonymous volume");
    env.stack(&["up", "-d", "--wait", "--wait-timeout", "60"]);
    assert_eq!(
        exec("cat /anon/data"),
        "kept\n",
        "and the next up mounts it again"
    );
    env.stack(&["down", "-v", "-t", "1"]);
    assert_eq!(anonymous(&env), 0);

    // A missing bind source with create_host_path: false is a clear error.
    let yaml = format!(
        "name: files\nservices:\n  app:\n    image: {image}\n    volumes:\n      - type: bind\n        \
         source: ./missing\n        target: /m\n        bind:\n          create_host_path: false\n"
    );
    std::fs::write(&env.file, yaml).unwrap();
    let out = env.rcompose(&["up", "-d", "-f", &env.file]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("missing of /m does not exist"), "{stderr}");
    assert!(!env.dir.path().join("missing").exists());
}

#[test]
fn an_unknown_volume_or_network_driver_is_refused_at_plan_time() {
    for (yaml, message) in [
        (
            "name: drv\nservices:\n  a:\n    image: x\n    volumes: [data:/d]\nvolumes:\n  data:\n    driver: nfs\n",
            "unknown volume driver \"nfs\"",
        ),
        (
            "name: drv\nservices:\n  a:\n    image: x\n    networks: [n]\nnetworks:\n  n:\n    driver: overlay\n",
            "driver \"overlay\" is not supported",
        ),
    ] {
        let env = Env::new(common::Rcompose::new(), yaml);
        for command in ["plan", "up"] {
            let out = env.rcompose(&[command, "-f", &env.file]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
            assert!(stderr.contains(message), "{command}: {stderr}");
        }
    }
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_saved_plan_applies_exactly_and_is_refused_once_the_files_or_the_host_changed() {
    let (_registry, cli, image) = common::with_web_image("test/stack:planfile", b"x");
    let _netns = ThreadNetns::enter_new().unwrap();
    run(&["ip", "link", "set", "lo", "up"]);
    let yaml = |v: &str| {
        format!(
            "name: saved\nservices:\n  a:\n    image: {image}\n    init: true\n    stop_grace_period: 1s\n    \
             command: [\"sleep\", \"600\"]\n    environment:\n      V: \"{v}\"\n"
        )
    };
    let env = Env::new(cli, &yaml("1"));
    let plan_file = env.dir.path().join("plan.json").display().to_string();

    // Saved, then applied: exactly that plan.
    env.stack(&["plan", "-o", &plan_file]);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    assert_eq!(saved["schema_version"], 1);
    env.stack(&["apply", &plan_file, "--progress", "quiet"]);
    assert_eq!(env.ps().len(), 1);

    // The files changed after the plan was made: refused.
    env.edit("V: \"1\"", "V: \"2\"");
    env.stack(&["plan", "-o", &plan_file]);
    env.edit("V: \"2\"", "V: \"3\"");
    let out = env.rcompose(&["apply", &plan_file, "-f", &env.file]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stack files changed"), "{stderr}");

    // The host changed after the plan was made: refused.
    env.stack(&["plan", "-o", &plan_file]);
    env.stack(&["stop", "a", "-t", "1"]);
    let out = env.rcompose(&["apply", &plan_file, "-f", &env.file]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("host changed"), "{stderr}");
    let ps = env.ps();
    assert_eq!(ps[0]["State"], "exited", "nothing was applied: {ps:?}");
}
