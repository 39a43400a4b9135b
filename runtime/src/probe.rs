//! One healthcheck probe: a process exec'd into the container whose exit
//! code and output become a [`ProbeResult`]. It runs alongside the monitor's
//! loop (never blocking it); past its timeout it is killed and counts as a
//! failure with exit code -1, as Docker does.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::health::ProbeResult;
use crate::oci::{ExecProcess, OciRuntime, Stdio};

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
    /// Starts `process` in container `id`.
    pub fn start(
        oci: &OciRuntime,
        id: &str,
        process: &ExecProcess,
        timeout: Duration,
    ) -> Result<Probe, String> {
        let (read, write) = rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
        )
        .map_err(|e| format!("failed to create a pipe: {e}"))?;
        let write2 = write.try_clone().map_err(|e| e.to_string())?;
        let stdin = File::open("/dev/null").map_err(|e| e.to_string())?;
        let stdio = Stdio {
            stdin: Some(stdin.into()),
            stdout: Some(write),
            stderr: Some(write2),
        };
        let start = SystemTime::now();
        let pid = oci
            .exec(id, process, stdio)
            .map_err(|e| crate::monitor::error_chain(&e))?;
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
        let Some(fd) = &self.output else { return };
        let mut chunk = [0u8; 4096];
        loop {
            match rustix::io::read(fd, &mut chunk) {
                Ok(0) => {
                    self.output = None;
                    return;
                }
                Ok(n) => {
                    let room = MAX_OUTPUT.saturating_sub(self.buf.len());
                    self.buf.extend_from_slice(&chunk[..n.min(room)]);
                }
                Err(_) => return,
            }
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
