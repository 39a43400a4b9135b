//! One healthcheck probe: a process exec'd into the container whose exit
//! code and output become a [`ProbeResult`]. It runs alongside the monitor's
//! loop (never blocking it); past its timeout it is killed and counts as a
//! failure with exit code -1, as Docker does.

use std::fs::File;
use std::io::Read as _;
use std::os::fd::{AsFd as _, OwnedFd};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::container::Paths;
use crate::health::ProbeResult;
use crate::oci::{ExecProcess, OciRuntime, Stdio};

/// The hidden sub-command that execs a probe into a container.
pub const PROBE_ARG: &str = "__probe";

/// The probe helper: `args` are `[state_root, run_dir, id, command…]`. It
/// execs the command into the container with the helper's stderr as the
/// command's stdout and stderr, prints the command's host pid and exits.
pub fn helper_main(args: &[String]) -> i32 {
    let [state_root, run_dir, id, command @ ..] = args else {
        eprintln!("usage: {PROBE_ARG} <state_root> <run_dir> <id> <command>…");
        return 2;
    };
    let paths = Paths {
        state_root: state_root.into(),
        run_dir: run_dir.into(),
    };
    let stdio = || -> std::io::Result<Stdio> {
        let err = std::io::stderr().as_fd().try_clone_to_owned()?;
        Ok(Stdio {
            stdin: Some(File::open("/dev/null")?.into()),
            stdout: Some(err.try_clone()?),
            stderr: Some(err),
        })
    };
    let stdio = match stdio() {
        Ok(stdio) => stdio,
        Err(e) => {
            eprintln!("failed to set up the probe's output: {e}");
            return 1;
        }
    };
    let process = ExecProcess {
        args: command.to_vec(),
        ..ExecProcess::default()
    };
    match OciRuntime::new(paths.oci_root()).exec(id, &process, stdio) {
        Ok(pid) => {
            println!("{pid}");
            0
        }
        Err(e) => {
            eprintln!("{}", crate::monitor::error_chain(&e));
            1
        }
    }
}

/// Output kept from one probe.
const MAX_OUTPUT: usize = 4096;

/// A probe in flight.
pub struct Probe {
    pid: Pid,
    /// Becomes readable when the probe exits.
    pub pidfd: OwnedFd,
    output: Option<OwnedFd>,
    buf: Vec<u8>,
    start: SystemTime,
    /// When the probe is killed.
    pub deadline: Instant,
    timeout: Duration,
}

impl Probe {
    /// Starts `process` in container `id` through the helper `program`
    /// ([`PROBE_ARG`]), which execs it into the container, prints its pid
    /// and exits: the probe becomes the monitor's child (the monitor is a
    /// subreaper), and the monitor itself never loads the container.
    pub fn start(
        program: &Path,
        paths: &Paths,
        id: &str,
        process: &ExecProcess,
        timeout: Duration,
    ) -> Result<Probe, String> {
        let (read, write) = rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
        )
        .map_err(|e| format!("failed to create a pipe: {e}"))?;
        let start = SystemTime::now();
        let mut helper = Command::new(program)
            .arg(PROBE_ARG)
            .arg(&paths.state_root)
            .arg(&paths.run_dir)
            .arg(id)
            .args(&process.args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(write)
            .spawn()
            .map_err(|e| format!("failed to run {}: {e}", program.display()))?;
        let mut answer = String::new();
        if let Some(mut out) = helper.stdout.take() {
            let _ = out.read_to_string(&mut answer);
        }
        let status = helper.wait().map_err(|e| e.to_string())?;
        let pid = match answer.trim().parse::<i32>() {
            Ok(pid) if status.success() && pid > 0 => pid,
            _ => {
                let mut said = Vec::new();
                read_available(&read, &mut said);
                let why = String::from_utf8_lossy(&said).trim().to_string();
                return Err(match why.is_empty() {
                    true => format!("the probe helper failed ({status})"),
                    false => why,
                });
            }
        };
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_raw(pid).ok_or("exec returned no pid")?,
            rustix::process::PidfdFlags::empty(),
        )
        .map_err(|e| format!("failed to open pidfd: {e}"))?;
        Ok(Probe {
            pid: Pid::from_raw(pid),
            pidfd,
            output: Some(read),
            buf: Vec::new(),
            start,
            deadline: Instant::now() + timeout,
            timeout,
        })
    }

    /// Takes whatever output is available without blocking.
    pub fn read_output(&mut self, _exited: bool) {
        if let Some(fd) = &self.output
            && read_available(fd, &mut self.buf)
        {
            self.output = None;
        }
    }

    /// The result once the probe exited or timed out (it is then reaped).
    pub fn poll_done(&mut self) -> Option<ProbeResult> {
        match waitpid(self.pid, Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => Some(self.result(code)),
            Ok(WaitStatus::Signaled(_, signal, _)) => Some(self.result(128 + signal as i32)),
            Ok(_) if Instant::now() >= self.deadline => {
                let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
                let _ = waitpid(self.pid, Some(WaitPidFlag::__WALL));
                Some(ProbeResult::timed_out(
                    self.start,
                    SystemTime::now(),
                    self.timeout,
                ))
            }
            Ok(_) => None,
            Err(_) => Some(self.result(255)),
        }
    }

    fn result(&mut self, code: i32) -> ProbeResult {
        self.read_output(true);
        ProbeResult::new(self.start, SystemTime::now(), code, &self.buf)
    }
}

/// Appends what `fd` (non-blocking) has now to `buf`, up to [`MAX_OUTPUT`]
/// bytes in all; true at its end.
fn read_available(fd: &OwnedFd, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    loop {
        match rustix::io::read(fd, &mut chunk) {
            Ok(0) => return true,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(buf.len());
                buf.extend_from_slice(&chunk[..n.min(room)]);
            }
            Err(_) => return false,
        }
    }
}
