//! Test support (feature `testing`): run the calling thread in a fresh
//! network namespace so that root tests touch nothing of the host's.
//!
//! A network namespace belongs to a thread, not to the process: threads and
//! processes started from the calling thread while the guard lives are in
//! the new namespace too; other test threads are not.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;

use nix::sched::{CloneFlags, setns, unshare};

/// The calling thread's network namespace, swapped for a new one until drop.
pub struct ThreadNetns {
    original: File,
    /// The new namespace, for tests that want to hand it to others.
    pub file: File,
}

impl ThreadNetns {
    /// Moves the calling thread into a new, empty network namespace (only a
    /// `lo` that is down). Needs root.
    pub fn enter_new() -> io::Result<ThreadNetns> {
        let original = File::open("/proc/thread-self/ns/net")?;
        unshare(CloneFlags::CLONE_NEWNET)?;
        let file = File::open("/proc/thread-self/ns/net")?;
        Ok(ThreadNetns { original, file })
    }
}

impl Drop for ThreadNetns {
    fn drop(&mut self) {
        // The namespace goes away with the last process and file using it.
        let _ = setns(self.original.as_fd(), CloneFlags::CLONE_NEWNET);
    }
}

/// True when running as root (root tests assert this).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Runs a future on a fresh current-thread runtime (on the calling thread,
/// so in its network namespace).
pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(f)
}

/// Runs a command (in the calling thread's namespace), asserts success and
/// returns its standard output.
pub fn run(args: &[&str]) -> String {
    let out = std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `GET /` over HTTP/1.0; the whole response, headers included.
pub fn http_get(addr: std::net::SocketAddr) -> io::Result<String> {
    use std::io::{Read as _, Write as _};
    let timeout = std::time::Duration::from_secs(2);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")?;
    let mut out = String::new();
    stream.read_to_string(&mut out)?;
    Ok(out)
}

/// Asserts, through `ip` and `nft` as independent checks, that the calling
/// thread's namespace holds no bridge or veth of ours and no table of ours.
pub fn assert_no_links_or_table_of_ours() {
    let links = run(&["ip", "-j", "link"]);
    assert!(
        !links.contains("\"rc-") && !links.contains("\"rcv"),
        "{links}"
    );
    let tables = run(&["nft", "-j", "list", "tables"]);
    assert!(!tables.contains("\"rcompose\""), "{tables}");
}
