//! `rcompose volume` and `container run --volume/--tmpfs` end to end, with
//! real containers from an image pulled from a registry on 127.0.0.1. Root
//! tests: `#[ignore]`d so that a non-root run reports them as skipped;
//! `scripts/test.sh` runs them when root.

use std::path::Path;
use std::time::Duration;

const CONTAINERS: [&str; 7] = ["w1", "w2", "copy", "bind", "ro", "tmp", "anon"];

mod common;

struct Env(common::Rcompose);

impl std::ops::Deref for Env {
    type Target = common::Rcompose;
    fn deref(&self) -> &common::Rcompose {
        &self.0
    }
}

impl Env {
    /// Runs a container to its end; its exit code and output.
    fn run_to_end(&self, name: &str, args: &[&str]) -> (i64, String) {
        let mut full = vec!["container", "run", "--name", name];
        full.extend_from_slice(args);
        self.ok(&full);
        for _ in 0..200 {
            let info: serde_json::Value =
                serde_json::from_str(&self.ok(&["container", "inspect", name])).unwrap();
            if info["state"]["status"] == "exited" {
                let logs = self.ok(&["container", "logs", name]);
                return (info["state"]["exit_code"].as_i64().unwrap(), logs);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("{name} did not exit");
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for name in CONTAINERS {
            let _ = self.rcompose(&["container", "rm", "--force", "--volumes", name]);
        }
        let _ = self.rcompose(&["volume", "prune", "--all"]);
    }
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn volumes_keep_data_copy_image_content_bind_relative_paths_and_honour_ro_and_tmpfs_size() {
    let (_registry, cli, image) = common::with_web_image("test/vol:1", b"from the image");
    let env = Env(cli);

    // Data outlives its container and the next container sees it.
    env.ok(&["volume", "create", "data"]);
    let write = [
        "-v",
        "data:/data",
        &image,
        "sh",
        "-c",
        "echo kept > /data/f",
    ];
    assert_eq!(env.run_to_end("w1", &write).0, 0);
    env.ok(&["container", "rm", "w1"]);
    let read = ["-v", "data:/data", &image, "cat", "/data/f"];
    assert_eq!(env.run_to_end("w2", &read), (0, "kept\n".to_string()));
    // In use: refused, naming the container.
    let busy = env.rcompose(&["volume", "rm", "data"]);
    let stderr = String::from_utf8_lossy(&busy.stderr);
    assert!(
        stderr.contains("volume data is in use by container w2"),
        "{stderr}"
    );
    env.ok(&["container", "rm", "w2"]);
    let data_dir = env.0.dir.path().join("state/volumes/data");
    assert!(data_dir.join("_data/f").exists());
    env.ok(&["volume", "rm", "data"]);
    assert!(!data_dir.exists(), "gone only after volume rm");

    // A new volume starts with the image's content at the mount point.
    let copy = ["-v", "site:/www", &image, "cat", "/www/index.html"];
    assert_eq!(
        env.run_to_end("copy", &copy),
        (0, "from the image".to_string())
    );

    // A relative bind source is relative to where rcompose runs.
    std::fs::create_dir(env.0.dir.path().join("hostdir")).unwrap();
    std::fs::write(env.0.dir.path().join("hostdir/x"), "from the host").unwrap();
    let bind = ["-v", "./hostdir:/h", &image, "cat", "/h/x"];
    assert_eq!(
        env.run_to_end("bind", &bind),
        (0, "from the host".to_string())
    );

    // Read-only refuses writes.
    let ro = [
        "-v",
        "./hostdir:/h:ro",
        &image,
        "sh",
        "-c",
        "echo no > /h/y",
    ];
    let (code, logs) = env.run_to_end("ro", &ro);
    assert_ne!(code, 0);
    assert!(logs.contains("Read-only file system"), "{logs}");
    assert!(!Path::new(&env.0.dir.path().join("hostdir/y")).exists());

    // A tmpfs has its size limit.
    let tmp = ["--tmpfs", "/t:size=1m", &image, "df", "-k", "/t"];
    let (code, logs) = env.run_to_end("tmp", &tmp);
    assert_eq!(code, 0);
    let size = logs
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap();
    assert_eq!(size, "1024", "{logs}");

    // An anonymous volume goes with `rm --volumes`.
    assert_eq!(
        env.run_to_end("anon", &["-v", "/cache", &image, "true"]).0,
        0
    );
    let before = env.ok(&["volume", "ls", "--json"]);
    assert!(before.contains("io.rcompose.anonymous"), "{before}");
    env.ok(&["container", "rm", "--volumes", "anon"]);
    let after = env.ok(&["volume", "ls", "--json"]);
    assert!(!after.contains("io.rcompose.anonymous"), "{after}");

    // A container that cannot be made leaves no anonymous volume behind.
    let bad = [
        "container",
        "run",
        "--name",
        "anon",
        "-v",
        "/cache",
        "--network",
        "missing",
        &image,
        "true",
    ];
    let out = env.rcompose(&bad);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("network missing not found"));
    let after = env.ok(&["volume", "ls", "--json"]);
    assert!(!after.contains("io.rcompose.anonymous"), "{after}");
}
