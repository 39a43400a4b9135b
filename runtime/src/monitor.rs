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
//!
//! Hand-over: starting a run takes most of the program (libcontainer, the
//! spec, the bundle); watching it takes little. Once a run is started the
//! monitor execs, keeping its pid (so the container stays its child), its
//! signal mask, the container's lock and the run's output pipes, into
//! [`SUPERVISE_ARG`] of a smaller program: `<exe>-monitor` beside its own
//! executable (`rcompose-monitor` for `rcompose`) when there is one, else its
//! own executable again. Only the pages that watching touches are then
//! mapped. For a restart it execs back into `<exe> __monitor … --resume`.

use std::fs::File;
use std::io::Write as _;
use std::os::fd::{AsFd, AsRawFd as _, OwnedFd};
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
/// The hidden sub-command that watches a started run (see the hand-over).
pub const SUPERVISE_ARG: &str = "__supervise-1";
/// After [`MONITOR_ARG`]'s three arguments: the monitor comes back to start
/// the next run of a container it holds the lock of.
const RESUME_FLAG: &str = "--resume";
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

/// Runs a monitor; `args` are `[state_root, run_dir, id]`, or those and
/// `--resume <lock fd> <backoff>` after a run's hand-over. Returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let (state_root, run_dir, id, resume) = match args {
        [state_root, run_dir, id] => (state_root, run_dir, id, None),
        [state_root, run_dir, id, flag, lock, backoff] if flag == RESUME_FLAG => {
            (state_root, run_dir, id, Some((lock, backoff)))
        }
        _ => {
            eprintln!("usage: {MONITOR_ARG} <state_root> <run_dir> <id>");
            return 2;
        }
    };
    let paths = Paths {
        state_root: state_root.into(),
        run_dir: run_dir.into(),
    };
    if let Some((lock, backoff)) = resume {
        let files = Files::new(paths.container_dir(id));
        let resumed = inherited_fd(lock).and_then(|lock| {
            let backoff = parse_backoff(backoff)?;
            let mut monitor = Monitor::new(paths, id)?;
            monitor.reported = true;
            monitor.lock = Some(lock);
            Ok((monitor, backoff))
        });
        return match resumed {
            Ok((mut monitor, backoff)) => monitor.run(backoff),
            Err(message) => {
                eprintln!("monitor: cannot resume: {message}");
                let _ = files
                    .update(|s| exited_with_error(s, &format!("failed to restart: {message}")));
                1
            }
        };
    }
    if let Err(message) = detach() {
        report(&format!("error {message}"));
        return 1;
    }
    // One monitor per container: a second start while the first monitor is
    // still preparing the run (its launcher killed, say) answers for it.
    let lock_path = paths.container_dir(id).join("monitor.lock");
    let lock = match File::options()
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
    monitor.lock = Some(lock.into());
    monitor.run(Backoff::new())
}

/// Watches a run another monitor program started and handed over; `args`
/// are those [`Monitor::hand_over`] passes. Returns the exit code.
pub fn supervise_main(args: &[String]) -> i32 {
    let handed = HandOver::parse(args).and_then(|h| {
        let paths = Paths {
            state_root: h.state_root.into(),
            run_dir: h.run_dir.into(),
        };
        let mut monitor = Monitor::new(paths, &h.id)?;
        monitor.reported = true;
        monitor.lock = Some(h.lock);
        monitor.program = PathBuf::from(&h.program[0]);
        Ok((monitor, h.run, h.backoff, h.program))
    });
    let (mut monitor, run, mut backoff, program) = match handed {
        Ok(handed) => handed,
        Err(message) => {
            eprintln!("monitor: cannot take over the run: {message}");
            return 1;
        }
    };
    if let Some(code) = monitor.watch(run, &mut backoff) {
        return code;
    }
    let message = format!("failed to restart: {}", monitor.resume(&program, &backoff));
    eprintln!("monitor: {message}");
    monitor.update(|s| exited_with_error(s, &message));
    1
}

/// The state of a container whose monitor gave up: exited, with why.
fn exited_with_error(state: &mut ContainerState, message: &str) {
    state.status = Status::Exited;
    state.error = Some(message.to_string());
    state.pid = 0;
    state.monitor_pid = 0;
    state.monitor_start = 0;
}

/// What a run's hand-over passes to the program that watches it.
struct HandOver {
    state_root: String,
    run_dir: String,
    id: String,
    /// The program that starts runs, and its sub-command.
    program: [String; 2],
    lock: OwnedFd,
    run: Run,
    backoff: Backoff,
}

impl HandOver {
    /// `[state_root, run_dir, id, program, sub-command, lock fd, pid,
    /// stdout fd or -, stderr fd or -, start time in ns since the epoch,
    /// backoff]`.
    fn parse(args: &[String]) -> Result<HandOver, String> {
        let [
            state_root,
            run_dir,
            id,
            program,
            command,
            lock,
            pid,
            stdout,
            stderr,
            started,
            backoff,
        ] = args
        else {
            return Err(format!("expected 11 arguments, got {}", args.len()));
        };
        let number = |what: &str, text: &str| {
            text.parse::<i64>()
                .map_err(|_| format!("bad {what}: {text:?}"))
        };
        let optional_fd = |text: &str| match text {
            "-" => Ok(None),
            fd => inherited_fd(fd).map(Some),
        };
        let pid = Pid::from_raw(number("pid", pid)? as i32);
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_raw(pid.as_raw()).ok_or("no pid")?,
            rustix::process::PidfdFlags::empty(),
        )
        .map_err(|e| format!("failed to open pidfd: {e}"))?;
        let started_at =
            SystemTime::UNIX_EPOCH + Duration::from_nanos(number("start time", started)? as u64);
        let ran_for = SystemTime::now()
            .duration_since(started_at)
            .unwrap_or_default();
        Ok(HandOver {
            state_root: state_root.clone(),
            run_dir: run_dir.clone(),
            id: id.clone(),
            program: [program.clone(), command.clone()],
            lock: inherited_fd(lock)?,
            run: Run {
                pid,
                pidfd,
                stdout: optional_fd(stdout)?,
                stderr: optional_fd(stderr)?,
                started: Instant::now()
                    .checked_sub(ran_for)
                    .unwrap_or_else(Instant::now),
                started_at,
            },
            backoff: parse_backoff(backoff)?,
        })
    }
}

/// The arguments after [`SUPERVISE_ARG`] that hand `run` over (read back by
/// [`HandOver::parse`]); `program` starts the next run.
fn hand_over_args(
    paths: &Paths,
    id: &str,
    program: &std::path::Path,
    lock: &OwnedFd,
    run: &Run,
    backoff: &Backoff,
) -> Vec<String> {
    let fd_arg = |fd: &Option<OwnedFd>| {
        fd.as_ref()
            .map_or_else(|| "-".to_string(), |fd| fd.as_raw_fd().to_string())
    };
    let started = run
        .started_at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    vec![
        paths.state_root.display().to_string(),
        paths.run_dir.display().to_string(),
        id.to_string(),
        program.display().to_string(),
        MONITOR_ARG.to_string(),
        lock.as_raw_fd().to_string(),
        run.pid.as_raw().to_string(),
        fd_arg(&run.stdout),
        fd_arg(&run.stderr),
        started.to_string(),
        backoff_arg(backoff),
    ]
}

/// Takes an fd passed across exec, closed again on the next exec.
#[allow(unsafe_code)]
fn inherited_fd(text: &str) -> Result<OwnedFd, String> {
    use std::os::fd::FromRawFd as _;
    let fd: i32 = text
        .parse()
        .ok()
        .filter(|fd| *fd > 2)
        .ok_or_else(|| format!("bad file descriptor {text:?}"))?;
    // Valid, and ours alone: the monitor that exec'd this program passed it.
    rustix::io::fcntl_getfd(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) })
        .map_err(|e| format!("file descriptor {fd}: {e}"))?;
    // SAFETY: checked open above; nothing else in this process owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    set_cloexec(&fd, true)?;
    Ok(fd)
}

fn set_cloexec(fd: &OwnedFd, on: bool) -> Result<(), String> {
    let flags = match on {
        true => rustix::io::FdFlags::CLOEXEC,
        false => rustix::io::FdFlags::empty(),
    };
    rustix::io::fcntl_setfd(fd, flags).map_err(|e| format!("failed to set the fd's flags: {e}"))
}

fn parse_backoff(text: &str) -> Result<Backoff, String> {
    match text {
        "-" => Ok(Backoff::new()),
        ms => ms
            .parse::<u64>()
            .map(|ms| Backoff::after(Duration::from_millis(ms)))
            .map_err(|_| format!("bad backoff {ms:?}")),
    }
}

fn backoff_arg(backoff: &Backoff) -> String {
    backoff
        .last()
        .map_or_else(|| "-".to_string(), |d| d.as_millis().to_string())
}

/// Replaces this process with `program args…`, keeping the signal mask
/// (std's `Command` would clear it, and a stop arriving in between would
/// then end the monitor). Returns only on failure.
fn exec(program: &std::path::Path, args: &[String]) -> String {
    use std::os::unix::ffi::OsStrExt as _;
    let to_c = |bytes: &[u8]| std::ffi::CString::new(bytes).map_err(|e| e.to_string());
    let program_c = match to_c(program.as_os_str().as_bytes()) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let argv: Result<Vec<_>, _> = std::iter::once(Ok(program_c.clone()))
        .chain(args.iter().map(|a| to_c(a.as_bytes())))
        .collect();
    match argv {
        Ok(argv) => match nix::unistd::execv(&program_c, &argv) {
            Err(e) => format!("failed to run {}: {e}", program.display()),
        },
        Err(e) => e,
    }
}

/// The program a run is handed over to, and its leading arguments.
fn supervisor(own: &std::path::Path) -> PathBuf {
    let mut name = own.file_name().unwrap_or_default().to_os_string();
    name.push("-monitor");
    let small = own.with_file_name(name);
    match small.is_file() {
        true => small,
        false => own.to_path_buf(),
    }
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
    /// The container's `monitor.lock`, held as long as a monitor watches it.
    lock: Option<OwnedFd>,
    /// The program that starts runs and probes (`rcompose`).
    program: PathBuf,
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
            lock: None,
            program: std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into()),
        })
    }

    fn run(&mut self, mut backoff: Backoff) -> i32 {
        loop {
            let run = match self.start_once() {
                Ok(run) => run,
                Err(message) => return self.fail(&message),
            };
            if !self.reported {
                report(&format!("started {}", run.pid));
                self.reported = true;
            }
            let run = self.hand_over(run, &backoff);
            if let Some(code) = self.watch(run, &mut backoff) {
                return code;
            }
        }
    }

    /// Execs into the program that watches runs (see the module's
    /// hand-over), passing it `run`; gives `run` back when that fails.
    fn hand_over(&mut self, run: Run, backoff: &Backoff) -> Run {
        let (own, lock) = match (std::env::current_exe(), &self.lock) {
            (Ok(own), Some(lock)) => (own, lock),
            (Err(e), _) => {
                eprintln!("monitor: no hand-over, own executable unknown: {e}");
                return run;
            }
            (_, None) => return run,
        };
        let mut args = vec![SUPERVISE_ARG.to_string()];
        args.extend(hand_over_args(
            &self.paths,
            &self.id,
            &own,
            lock,
            &run,
            backoff,
        ));
        let passed = [self.lock.as_ref(), run.stdout.as_ref(), run.stderr.as_ref()];
        let opened = passed
            .iter()
            .flatten()
            .try_for_each(|fd| set_cloexec(fd, false));
        let error = match opened {
            Ok(()) => exec(&supervisor(&own), &args),
            Err(e) => e,
        };
        eprintln!("monitor: no hand-over, watching the run here: {error}");
        for fd in passed.into_iter().flatten() {
            let _ = set_cloexec(fd, true);
        }
        run
    }

    /// Execs back into the program that starts runs, to start the next.
    /// Returns only on failure, with why.
    fn resume(&mut self, program: &[String; 2], backoff: &Backoff) -> String {
        let Some(lock) = self.lock.as_ref() else {
            return "the monitor holds no lock".to_string();
        };
        if let Err(e) = set_cloexec(lock, false) {
            return e;
        }
        let args = vec![
            program[1].clone(),
            self.paths.state_root.display().to_string(),
            self.paths.run_dir.display().to_string(),
            self.id.clone(),
            RESUME_FLAG.to_string(),
            lock.as_raw_fd().to_string(),
            backoff_arg(backoff),
        ];
        exec(std::path::Path::new(&program[0]), &args)
    }

    /// Watches `run` to its end, then applies the restart policy: the
    /// monitor's exit code, or `None` to start the next run.
    fn watch(&mut self, run: Run, backoff: &mut Backoff) -> Option<i32> {
        let started = run.started;
        let ending = self.supervise(run);
        let record_exit = self.finish_run(&ending);
        // Only this monitor changes the count: no lock needed to read it.
        let restart_count = self.files.state().unwrap_or_default().restart_count;
        let restart = should_restart(
            &self.record.config.restart,
            &ending.exit,
            restart_count,
            ending.stopped_by_user,
        );
        if !restart {
            self.set_final(Status::Exited, ending.stopped_by_user, record_exit);
            return Some(0);
        }
        let delay = backoff.next_delay(started.elapsed());
        self.update(|s| {
            record_exit(s);
            s.status = Status::Restarting;
        });
        if self.wait_for_stop(delay) {
            self.set_final(Status::Exited, true, |_| {});
            return Some(0);
        }
        self.update(|s| s.restart_count += 1);
        None
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
            exited_with_error(s, message);
            s.exit_code = Some(127);
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

    /// Writes the monitor's last state (with `change`, in the same write).
    fn set_final(
        &self,
        status: Status,
        stopped_by_user: bool,
        change: impl FnOnce(&mut ContainerState),
    ) {
        self.update(|s| {
            change(s);
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
            let _ = nix::sys::signal::kill(run.pid, Signal::SIGKILL);
            cgroups::kill_path(&cgroups::cgroups_path(&self.id));
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
        let started = crate::probe::Probe::start(
            &self.program,
            &self.paths,
            &self.id,
            &process,
            policy.timeout,
        );
        match started {
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

    /// Tears the ended run down; returns the change that records its end
    /// in the state, for the state write that follows.
    fn finish_run(&mut self, ending: &Ending) -> impl FnOnce(&mut ContainerState) + use<> {
        let oom = cgroups::oom_kills(&cgroups::cgroups_path(&self.id)) > 0;
        self.teardown();
        let code = ending.exit.code;
        let oom_killed = oom || ending.exit.oom_killed;
        move |s: &mut ContainerState| {
            s.pid = 0;
            s.finished_at = Some(now_rfc3339());
            s.exit_code = Some(code);
            s.oom_killed = oom_killed;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe_pair() -> (OwnedFd, OwnedFd) {
        pipe().unwrap()
    }

    #[test]
    fn a_hand_over_is_read_back_from_its_arguments() {
        let paths = Paths {
            state_root: "/var/lib/rcompose".into(),
            run_dir: "/run/rcompose".into(),
        };
        let (lock, _lock_w) = pipe_pair();
        let (out, _out_w) = pipe_pair();
        let me = std::process::id() as i32;
        let started_at = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        let run = Run {
            pid: Pid::from_raw(me),
            pidfd: pipe_pair().0,
            stdout: Some(out),
            stderr: None,
            started: Instant::now(),
            started_at,
        };
        let mut backoff = Backoff::new();
        backoff.next_delay(Duration::ZERO);
        let program = std::path::Path::new("/usr/bin/rcompose");
        let args = hand_over_args(&paths, "c1", program, &lock, &run, &backoff);
        let numbers = [lock.as_raw_fd(), run.stdout.as_ref().unwrap().as_raw_fd()];
        // The hand-over takes ownership of the fds named in its arguments.
        std::mem::forget(lock);
        std::mem::forget(run);
        let back = HandOver::parse(&args).unwrap();
        assert_eq!(back.state_root, "/var/lib/rcompose");
        assert_eq!(back.run_dir, "/run/rcompose");
        assert_eq!(back.id, "c1");
        assert_eq!(back.program, ["/usr/bin/rcompose", MONITOR_ARG]);
        assert_eq!(back.lock.as_raw_fd(), numbers[0]);
        assert_eq!(back.run.pid.as_raw(), me);
        assert_eq!(
            back.run.stdout.as_ref().map(|f| f.as_raw_fd()),
            Some(numbers[1])
        );
        assert!(back.run.stderr.is_none());
        assert_eq!(back.run.started_at, started_at);
        assert_eq!(back.backoff.last(), backoff.last());
        // Passed fds are closed again at the next exec.
        let flags = rustix::io::fcntl_getfd(&back.lock).unwrap();
        assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
    }

    #[test]
    fn a_monitor_that_cannot_resume_marks_the_container_exited_with_why() {
        let root = tempfile::tempdir().unwrap();
        let paths = Paths {
            state_root: root.path().join("state"),
            run_dir: root.path().join("run"),
        };
        let dir = paths.container_dir("c1");
        std::fs::create_dir_all(&dir).unwrap();
        let files = Files::new(dir);
        files.update(|s| s.status = Status::Restarting).unwrap();
        let args = [
            paths.state_root.display().to_string(),
            paths.run_dir.display().to_string(),
            "c1".to_string(),
            RESUME_FLAG.to_string(),
            "999999".to_string(),
            "-".to_string(),
        ];
        assert_eq!(main(&args), 1);
        let state = files.state().unwrap();
        assert_eq!(state.status, Status::Exited);
        let error = state.error.unwrap_or_default();
        assert!(error.starts_with("failed to restart: "), "{error}");
        assert!(error.contains("999999"), "{error}");
    }

    fn refusal(args: &[String]) -> String {
        match HandOver::parse(args) {
            Err(why) => why,
            Ok(_) => panic!("{args:?} accepted"),
        }
    }

    #[test]
    fn a_hand_over_with_missing_or_bad_arguments_is_refused() {
        let few = ["/var/lib/rcompose".to_string(), "/run".to_string()];
        assert!(refusal(&few).contains("11 arguments"));
        let mut args: Vec<String> = [
            "/s",
            "/r",
            "c1",
            "/bin/x",
            MONITOR_ARG,
            "1",
            "1",
            "-",
            "-",
            "0",
            "-",
        ]
        .map(String::from)
        .to_vec();
        // fd 1 is stdout, never a passed fd.
        assert!(refusal(&args).contains("file descriptor"));
        args[5] = "999999".to_string();
        assert!(refusal(&args).contains("999999"));
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
