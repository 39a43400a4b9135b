//! The project lock against a second holder in this process, in another
//! process, with and without a timeout.

use std::process::{Command, Stdio};
use std::thread;

use super::*;

/// Tells the helper test that it runs as the child of
/// [`a_lock_held_by_another_process_names_its_pid_until_it_exits`].
const CHILD_DIR: &str = "RCOMPOSE_LOCK_TEST_CHILD_DIR";

fn take(dir: &Path, timeout: Option<Duration>) -> Result<ProjectLock, LockError> {
    ProjectLock::acquire_as(dir, "shop", timeout, "rcompose up")
}

#[test]
fn two_open_files_of_one_lock_file_conflict_even_in_one_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("shop.lock");
    let open = || {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .expect("open")
    };
    let (first, second) = (open(), open());
    first.try_lock().expect("first lock");
    assert!(matches!(second.try_lock(), Err(TryLockError::WouldBlock)));
    first.unlock().expect("unlock");
    second.try_lock().expect("second lock after the unlock");
}

#[test]
fn a_zero_timeout_fails_at_once_and_names_the_holder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let held = take(dir.path(), None).expect("first");
    let err = take(dir.path(), Some(Duration::ZERO)).expect_err("held");
    assert_eq!(
        err.to_string(),
        format!(
            "project shop is locked by pid {} (rcompose up); waited 0s — use --lock-timeout to wait longer",
            std::process::id()
        )
    );
    assert_eq!(held.path(), dir.path().join("shop.lock"));
}

#[test]
fn dropping_the_lock_lets_the_next_one_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = take(dir.path(), Some(Duration::ZERO)).expect("first");
    drop(first);
    take(dir.path(), Some(Duration::ZERO)).expect("second after the drop");
}

#[test]
fn a_waiter_gets_the_lock_when_the_holder_lets_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = take(dir.path(), None).expect("first");
    let releaser = thread::spawn(move || {
        thread::sleep(Duration::from_millis(150));
        drop(first);
    });
    take(dir.path(), Some(Duration::from_secs(30))).expect("lock after the release");
    releaser.join().expect("releaser");
}

#[test]
fn a_timeout_that_expires_is_reported_with_its_length() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _held = take(dir.path(), None).expect("first");
    let start = Instant::now();
    let err = take(dir.path(), Some(Duration::from_millis(120))).expect_err("held");
    assert!(start.elapsed() >= Duration::from_millis(120));
    assert!(err.to_string().contains("; waited 120ms — "), "{err}");
}

#[test]
fn projects_lock_independently() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _shop = take(dir.path(), None).expect("shop");
    ProjectLock::acquire(dir.path(), "blog", Some(Duration::ZERO)).expect("blog");
}

#[test]
fn a_holder_that_wrote_nothing_yet_is_another_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x.lock");
    std::fs::write(&path, "").expect("write");
    assert_eq!(read_holder(&path).to_string(), "another process");
    std::fs::write(&path, "pid 7\n").expect("write");
    assert_eq!(read_holder(&path).to_string(), "pid 7");
}

#[test]
fn durations_read_as_people_write_them() {
    assert_eq!(human(Duration::ZERO), "0s");
    assert_eq!(human(Duration::from_millis(250)), "250ms");
    assert_eq!(human(Duration::from_secs(5)), "5s");
    assert_eq!(human(Duration::from_millis(1500)), "1.5s");
}

/// Runs only as the child of the test below: holds the lock until told to
/// let go (or 30 s pass).
#[test]
#[ignore = "helper process of a_lock_held_by_another_process_names_its_pid_until_it_exits"]
fn helper_child_holds_the_lock() {
    let Some(dir) = std::env::var_os(CHILD_DIR).map(PathBuf::from) else {
        return;
    };
    let _lock = ProjectLock::acquire_as(&dir, "shop", Some(Duration::ZERO), "rcompose watch")
        .expect("child lock");
    std::fs::write(dir.join("ready"), "").expect("ready");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.join("release").exists() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_lock_held_by_another_process_names_its_pid_until_it_exits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            "lock::tests::helper_child_holds_the_lock",
            "--exact",
            "--ignored",
        ])
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.path().join("ready").exists() {
        assert!(child.try_wait().expect("child").is_none(), "the child died");
        assert!(Instant::now() < deadline, "the child never took the lock");
        thread::sleep(Duration::from_millis(20));
    }
    let err = take(dir.path(), Some(Duration::ZERO)).expect_err("held by the child");
    let LockError::Locked { holder, .. } = &err else {
        panic!("unexpected {err}");
    };
    assert_eq!(holder.pid, Some(child.id()));
    assert_eq!(holder.command.as_deref(), Some("rcompose watch"));
    std::fs::write(dir.path().join("release"), "").expect("release");
    assert!(child.wait().expect("child").success());
    take(dir.path(), Some(Duration::ZERO)).expect("free once the child exited");
}
