//! The per-container monitor: one small single-threaded process per running
//! container, detached from whoever started it (so containers outlive the
//! `rcompose` process), like containerd's shim or podman's conmon.
//!
//! It mounts the rootfs, writes the bundle, creates and starts the container,
//! copies its stdout/stderr into the json-file log, runs healthchecks, takes
//! stop requests (SIGTERM to the monitor: stop signal, grace period, SIGKILL),
//! records the exit status and OOM kills, tears the run down (cgroup, mount)
//! and applies the restart policy with exponential backoff.
//!
//! A paused container (see `Runtime::pause`) keeps its status: the monitor
//! writes the status only when a run starts or ends. It runs no healthcheck
//! while the container is paused (a probe would freeze with it, and a pause
//! is no failure), and thaws the container when asked to stop.
//!
//! Launch protocol: the monitor is started as `<program> <args…> <state_root>
//! <run_dir> <id>` with its stdout a pipe. It detaches (setsid, fork), then
//! writes one line on that pipe, `started <pid>` or `error <message>`, and
//! closes it. Its stderr is the container's `monitor.log`.

use std::fs::File;
use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use rustix::event::{PollFd, PollFlags};

use crate::container::{ContainerRecord, ContainerState, Files, Paths, Status, now_rfc3339};
use crate::health::{HealthPolicy, HealthState, ProbeResult};
use crate::logs::{LogWriter, Stream};
use crate::oci::{CreateOptions, ExecProcess, OciRuntime, Stdio};
use crate::restart::{Backoff, ExitInfo, should_restart};
use crate::{cgroups, prepare};

/// The hidden sub-command that runs a monitor.
pub const MONITOR_ARG: &str = "__monitor";
/// Time given to a dead container's pipes to drain.
const DRAIN: Duration = Duration::from_secs(2);
/// Default grace period between the stop signal and SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// A pending stop request (`stop.json`).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct StopRequest {
    /// Grace period in seconds, overriding the container's.
    pub timeout_secs: Option<u64>,
}

/// Runs a monitor; `args` are `[state_root, run_dir, id]`. Returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let [state_root, run_dir, id] = args else {
        eprintln!("usage: {MONITOR_ARG} <state_root> <run_dir> <id>");
        return 2;
    };
    let paths = Paths {
        state_root: state_root.into(),
        run_dir: run_dir.into(),
    };
    if let Err(message) = detach() {
        report(&format!("error {message}"));
        return 1;
    }
    // One monitor per container: a second start while the first monitor is
    // still preparing the run (its launcher killed, say) answers for it.
    let lock_path = paths.container_dir(id).join("monitor.lock");
    let _lock = match File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
    {
        Err(e) => {
            report(&format!(
                "error failed to open {}: {e}",
                lock_path.display()
            ));
            return 1;
        }
        Ok(file) => match file.try_lock() {
            Ok(()) => file,
            Err(std::fs::TryLockError::WouldBlock) => {
                report(&answer_for_other(&paths, id));
                return 0;
            }
            Err(std::fs::TryLockError::Error(e)) => {
                report(&format!(
                    "error failed to lock {}: {e}",
                    lock_path.display()
                ));
                return 1;
            }
        },
    };
    let mut monitor = match Monitor::new(paths, id) {
        Ok(m) => m,
        Err(message) => {
            report(&format!("error {message}"));
            return 1;
        }
    };
    monitor.run()
}

/// The launch answer on behalf of the monitor that holds the container's
/// lock: `started <pid>` once it runs the container, or why it did not.
fn answer_for_other(paths: &Paths, id: &str) -> String {
    let files = Files::new(paths.container_dir(id));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut backoff = crate::container::Backoff::default();
    while Instant::now() < deadline {
        if let Ok(state) = files.state() {
            if crate::container::monitor_alive(&state) && state.pid > 0 {
                return format!("started {}", state.pid);
            }
            if let (Status::Exited, Some(error)) = (state.status, &state.error) {
                return format!("error {error}");
            }
        }
        backoff.sleep();
    }
    "error another monitor is starting this container".to_string()
}

/// New session, then fork so the launcher can reap us at once.
fn detach() -> Result<(), String> {
    let _ = rustix::process::setsid();
    if let nix::unistd::ForkResult::Parent { .. } = fork_detached()? {
        std::process::exit(0);
    }
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .map_err(|e| format!("failed to become a subreaper: {e}"))
}

#[allow(unsafe_code)]
fn fork_detached() -> Result<nix::unistd::ForkResult, String> {
    // SAFETY: the monitor is single-threaded (it never starts threads), so
    // the child may run arbitrary code.
    unsafe { nix::unistd::fork() }.map_err(|e| format!("failed to fork: {e}"))
}

/// Writes the one-line answer to the launcher and closes that pipe.
fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    if let Ok(null) = File::options().write(true).open("/dev/null") {
        let _ = rustix::stdio::dup2_stdout(&null);
    }
}

/// One run of the container's process.
struct Run {
    pid: Pid,
    pidfd: OwnedFd,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    started: Instant,
    started_at: SystemTime,
}

/// How a run ended.
struct Ending {
    exit: ExitInfo,
    stopped_by_user: bool,
}

struct Monitor {
    paths: Paths,
    id: String,
    files: Files,
    record: ContainerRecord,
    oci: OciRuntime,
    logs: LogWriter,
    signals: SignalFd,
    health: Option<HealthPolicy>,
    reported: bool,
}

impl Monitor {
    fn new(paths: Paths, id: &str) -> Result<Monitor, String> {
        let files = Files::new(paths.container_dir(id));
        let record = files.record().map_err(|e| e.to_string())?;
        let mut mask = SigSet::empty();
        for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
            mask.add(signal);
        }
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None).map_err(|e| e.to_string())?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| e.to_string())?;
        let logs = LogWriter::open(
            files.dir(),
            record.config.log_max_size,
            record.config.log_max_files.unwrap_or(1),
        )
        .map_err(|e| format!("failed to open the log: {e}"))?;
        let health =
            prepare::healthcheck(&paths, &record).and_then(|h| HealthPolicy::from_config(&h));
        Ok(Monitor {
            oci: OciRuntime::new(paths.oci_root()),
            paths,
            id: id.to_string(),
            files,
            record,
            logs,
            signals,
            health,
            reported: false,
        })
    }

    fn run(&mut self) -> i32 {
        let mut backoff = Backoff::new();
        loop {
            let run = match self.start_once() {
                Ok(run) => run,
                Err(message) => return self.fail(&message),
            };
            if !self.reported {
                report(&format!("started {}", run.pid));
                self.reported = true;
            }
            let started = run.started;
            let ending = self.supervise(run);
            let state = self.finish_run(&ending);
            let restart = should_restart(
                &self.record.config.restart,
                &ending.exit,
                state.restart_count,
                ending.stopped_by_user,
            );
            if !restart {
                self.set_final(Status::Exited, ending.stopped_by_user);
                return 0;
            }
            let delay = backoff.next_delay(started.elapsed());
            self.update(|s| s.status = Status::Restarting);
            if self.wait_for_stop(delay) {
                self.set_final(Status::Exited, true);
                return 0;
            }
            self.update(|s| s.restart_count += 1);
        }
    }

    fn fail(&mut self, message: &str) -> i32 {
        eprintln!("monitor: {message}");
        // A run created and not started still has its process waiting:
        // libcontainer's forced delete kills it.
        if let Err(e) = self.oci.delete(&self.id, true) {
            eprintln!("monitor: {}", error_chain(&e));
        }
        self.teardown();
        self.update(|s| {
            s.status = Status::Exited;
            s.error = Some(message.to_string());
            s.exit_code = Some(127);
            s.pid = 0;
            s.monitor_pid = 0;
        });
        if !self.reported {
            report(&format!("error {message}"));
            self.reported = true;
        }
        1
    }

    fn update(&self, change: impl FnOnce(&mut ContainerState)) -> ContainerState {
        match self.files.update(change) {
            Ok(state) => state,
            Err(e) => {
                eprintln!("monitor: failed to write state: {e}");
                self.files.state().unwrap_or_default()
            }
        }
    }

    fn set_final(&self, status: Status, stopped_by_user: bool) {
        self.update(|s| {
            s.status = status;
            s.stopped_by_user = stopped_by_user;
            s.pid = 0;
            s.monitor_pid = 0;
            s.monitor_start = 0;
        });
        let _ = std::fs::remove_file(self.files.path("stop.json"));
    }

    fn start_once(&mut self) -> Result<Run, String> {
        let prepared = prepare::bundle(&self.paths, &self.record).map_err(|e| format!("{e:#}"))?;
        let _ = self.oci.delete(&self.id, true);
        // With `tty: true` the process gets a pseudo-terminal whose master
        // comes back over a console socket; its output is logged as stdout.
        let console = match self.record.config.tty {
            true => Some(
                crate::tty::ConsoleSocket::bind(&self.paths.run_dir.join("tty"))
                    .map_err(|e| error_chain(&e))?,
            ),
            false => None,
        };
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let stdin = File::open("/dev/null").map_err(|e| e.to_string())?;
        let opts = CreateOptions {
            init: self.record.config.init,
            console_socket: console.as_ref().map(|c| c.path().to_path_buf()),
            stdio: Stdio {
                stdin: Some(stdin.into()),
                stdout: Some(out_w),
                stderr: Some(err_w),
            },
            ..CreateOptions::default()
        };
        let pid = self
            .oci
            .create(&self.id, &prepared.bundle, opts)
            .map_err(|e| error_chain(&e))?;
        let (stdout, stderr) = match &console {
            Some(socket) => (socket.receive_master().map_err(|e| error_chain(&e))?, None),
            None => (out_r, Some(err_r)),
        };
        self.oci.start(&self.id).map_err(|e| error_chain(&e))?;
        let pid = Pid::from_raw(pid);
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_raw(pid.as_raw()).ok_or("no pid")?,
            rustix::process::PidfdFlags::empty(),
        )
        .map_err(|e| format!("failed to open pidfd: {e}"))?;
        let me = std::process::id() as i32;
        let health = self.health.as_ref().map(|_| HealthState::default());
        self.update(|s| {
            s.status = Status::Running;
            s.pid = pid.as_raw();
            s.monitor_pid = me;
            s.monitor_start = crate::container::process_start(me).unwrap_or(0);
            s.started_at = Some(now_rfc3339());
            s.exit_code = None;
            s.oom_killed = false;
            s.error = None;
            s.stopped_by_user = false;
            s.health = health;
        });
        Ok(Run {
            pid,
            pidfd,
            stdout: Some(stdout),
            stderr,
            started: Instant::now(),
            started_at: SystemTime::now(),
        })
    }

    fn supervise(&mut self, mut run: Run) -> Ending {
        let mut stop = StopSequence::default();
        let mut exit: Option<(ExitInfo, Instant)> = None;
        let mut probe: Option<crate::probe::Probe> = None;
        let mut next_probe = self
            .health
            .as_ref()
            .map(|h| Instant::now() + h.next_delay(&HealthState::default(), Duration::ZERO));
        loop {
            if let Some((info, at)) = &exit
                && ((run.stdout.is_none() && run.stderr.is_none()) || at.elapsed() > DRAIN)
            {
                return Ending {
                    exit: *info,
                    stopped_by_user: stop.requested,
                };
            }
            let deadline = [stop.kill_at, next_probe, probe.as_ref().map(|p| p.deadline)]
                .into_iter()
                .flatten()
                .chain(exit.as_ref().map(|(_, at)| *at + DRAIN))
                .min();
            let ready = self.wait(&run, exit.is_none(), probe.as_ref(), deadline);
            if ready.signal {
                self.take_signals(&run, &mut stop);
            }
            self.copy_output(&mut run, ready.stdout, ready.stderr);
            if ready.exited && exit.is_none() {
                exit = reap(run.pid).map(|info| (info, Instant::now()));
            }
            if exit.is_none() {
                self.escalate(&run, &mut stop);
            }
            self.drive_probe(
                &run,
                &mut probe,
                &mut next_probe,
                ready.probe,
                exit.is_some(),
            );
        }
    }

    fn wait(
        &self,
        run: &Run,
        alive: bool,
        probe: Option<&crate::probe::Probe>,
        deadline: Option<Instant>,
    ) -> Ready {
        let mut fds = vec![PollFd::new(&self.signals, PollFlags::IN)];
        let slots = [
            run.stdout.as_ref().map(|f| f.as_fd()),
            run.stderr.as_ref().map(|f| f.as_fd()),
            alive.then(|| run.pidfd.as_fd()),
            probe.map(|p| p.pidfd.as_fd()),
        ];
        let mut index = [None; 4];
        for (i, fd) in slots.iter().enumerate() {
            if let Some(fd) = fd {
                index[i] = Some(fds.len());
                fds.push(PollFd::from_borrowed_fd(*fd, PollFlags::IN));
            }
        }
        let timeout = deadline.map(|d| {
            let left = d.saturating_duration_since(Instant::now());
            rustix::event::Timespec::try_from(left).unwrap_or_default()
        });
        let _ = rustix::event::poll(&mut fds, timeout.as_ref());
        let hit = |slot: usize| index[slot].is_some_and(|i| !fds[i].revents().is_empty());
        Ready {
            signal: !fds[0].revents().is_empty(),
            stdout: hit(0),
            stderr: hit(1),
            exited: hit(2),
            probe: hit(3),
        }
    }

    fn take_signals(&mut self, run: &Run, stop: &mut StopSequence) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            let signal = info.ssi_signo as i32;
            if (signal == libc::SIGTERM || signal == libc::SIGINT) && !stop.requested {
                self.thaw_for_stop();
                let grace = self.grace();
                stop.requested = true;
                stop.kill_at = Some(Instant::now() + grace);
                let signal = prepare::stop_signal(&self.paths, &self.record);
                let _ = nix::sys::signal::kill(run.pid, signal);
            }
        }
    }

    /// A frozen process takes no signal: a stop that did not come through
    /// `Runtime::stop` (which thaws first), a shutdown say, thaws it here.
    fn thaw_for_stop(&self) {
        if !self.paused() {
            return;
        }
        let id = &self.id;
        self.update(|s| {
            if s.status == Status::Paused && cgroups::thaw(id).is_ok() {
                s.status = Status::Running;
            }
        });
    }

    /// Whether the container is paused now.
    fn paused(&self) -> bool {
        self.files.state().is_ok_and(|s| s.status == Status::Paused)
    }

    fn grace(&self) -> Duration {
        let path = self.files.path("stop.json");
        let request: Option<StopRequest> = crate::fsutil::read_json(&path).ok().flatten();
        request
            .and_then(|r| r.timeout_secs)
            .map(Duration::from_secs)
            .or(self.record.config.stop_grace_period)
            .unwrap_or(DEFAULT_GRACE)
    }

    fn escalate(&self, run: &Run, stop: &mut StopSequence) {
        if stop.kill_at.is_some_and(|t| Instant::now() >= t) {
            stop.kill_at = None;
            if self.oci.kill(&self.id, Signal::SIGKILL, true).is_err() {
                let _ = nix::sys::signal::kill(run.pid, Signal::SIGKILL);
            }
        }
    }

    fn copy_output(&mut self, run: &mut Run, stdout: bool, stderr: bool) {
        let mut buf = vec![0u8; 64 * 1024];
        for (ready, slot, stream) in [
            (stdout, &mut run.stdout, Stream::Stdout),
            (stderr, &mut run.stderr, Stream::Stderr),
        ] {
            let Some(fd) = slot.as_ref().filter(|_| ready) else {
                continue;
            };
            match rustix::io::read(fd, &mut buf) {
                Ok(0) | Err(_) => {
                    let _ = self.logs.flush_partial(stream, SystemTime::now());
                    *slot = None;
                }
                Ok(n) => {
                    if let Err(e) = self.logs.write(stream, &buf[..n], SystemTime::now()) {
                        eprintln!("monitor: failed to write the log: {e}");
                    }
                }
            }
        }
    }

    fn drive_probe(
        &mut self,
        run: &Run,
        probe: &mut Option<crate::probe::Probe>,
        next_probe: &mut Option<Instant>,
        probe_ready: bool,
        exited: bool,
    ) {
        let Some(policy) = self.health.clone() else {
            return;
        };
        if let Some(p) = probe.as_mut() {
            p.read_output(probe_ready);
            if Instant::now() >= p.deadline && self.paused() {
                // Frozen with the container, it cannot finish: time it from the unpause.
                p.deadline = Instant::now() + policy.timeout;
                return;
            }
            if let Some(result) = p.poll_done() {
                *probe = None;
                self.record_probe(&policy, run, result, next_probe);
            }
            return;
        }
        if exited || next_probe.is_none_or(|t| Instant::now() < t) {
            return;
        }
        // Held until the probe runs, so that no pause freezes it half-started.
        let _exec = self.files.exec_lock();
        if self.paused() {
            *next_probe = Some(Instant::now() + policy.interval);
            return;
        }
        let process = ExecProcess {
            args: policy.argv(),
            ..ExecProcess::default()
        };
        match crate::probe::Probe::start(&self.oci, &self.id, &process, policy.timeout) {
            Ok(p) => *probe = Some(p),
            Err(message) => {
                let now = SystemTime::now();
                let result = ProbeResult::new(now, now, 1, message.as_bytes());
                self.record_probe(&policy, run, result, next_probe);
            }
        }
    }

    fn record_probe(
        &mut self,
        policy: &HealthPolicy,
        run: &Run,
        result: ProbeResult,
        next_probe: &mut Option<Instant>,
    ) {
        let state = self.update(|s| {
            let health = s.health.get_or_insert_with(HealthState::default);
            policy.record(health, result, run.started_at);
        });
        let health = state.health.unwrap_or_default();
        *next_probe = Some(Instant::now() + policy.next_delay(&health, run.started.elapsed()));
    }

    fn finish_run(&mut self, ending: &Ending) -> ContainerState {
        let oom = cgroups::oom_kills(&cgroups::cgroups_path(&self.id)) > 0;
        self.teardown();
        let code = ending.exit.code;
        self.update(|s| {
            s.pid = 0;
            s.finished_at = Some(now_rfc3339());
            s.exit_code = Some(code);
            s.oom_killed = oom || ending.exit.oom_killed;
        })
    }

    /// Removes what one run set up: libcontainer state, cgroup, rootfs mount.
    /// The run's process is reaped and a service's spec has no hooks
    /// (`spec::build_spec`), so no libcontainer delete is needed.
    fn teardown(&self) {
        let cgroups_path = cgroups::cgroups_path(&self.id);
        if let Err(e) = self.oci.forget_exited(&self.id, &cgroups_path) {
            eprintln!(
                "monitor: failed to remove the runtime state of {}: {e}",
                self.id
            );
        }
        let rootfs = self.files.path("bundle/rootfs");
        if let Err(e) = crate::rootfs::unmount(&rootfs) {
            eprintln!("monitor: failed to unmount {}: {e}", rootfs.display());
        }
    }

    /// Sleeps for the restart delay; true when a stop request came meanwhile.
    fn wait_for_stop(&mut self, delay: Duration) -> bool {
        let deadline = Instant::now() + delay;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let mut fds = [PollFd::new(&self.signals, PollFlags::IN)];
            let timeout = rustix::event::Timespec::try_from(left).unwrap_or_default();
            let _ = rustix::event::poll(&mut fds, Some(&timeout));
            while let Ok(Some(info)) = self.signals.read_signal() {
                let signal = info.ssi_signo as i32;
                if signal == libc::SIGTERM || signal == libc::SIGINT {
                    return true;
                }
            }
        }
    }
}

#[derive(Default)]
struct StopSequence {
    requested: bool,
    kill_at: Option<Instant>,
}

struct Ready {
    signal: bool,
    stdout: bool,
    stderr: bool,
    exited: bool,
    probe: bool,
}

/// Reaps the container's PID 1 (a clone child: needs `__WALL`).
fn reap(pid: Pid) -> Option<ExitInfo> {
    match waitpid(pid, Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => Some(ExitInfo {
            code,
            signal: None,
            oom_killed: false,
        }),
        Ok(WaitStatus::Signaled(_, signal, _)) => Some(ExitInfo {
            code: 128 + signal as i32,
            signal: Some(signal as i32),
            oom_killed: false,
        }),
        Ok(_) => None,
        // Already reaped elsewhere: the exit status is lost, report a failure.
        Err(_) => Some(ExitInfo {
            code: 255,
            signal: None,
            oom_killed: false,
        }),
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| format!("failed to create a pipe: {e}"))
}

/// An error with its causes, `a: b: c`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Where the monitor of a container writes its diagnostics.
pub fn log_path(paths: &Paths, id: &str) -> PathBuf {
    paths.container_dir(id).join("monitor.log")
}
