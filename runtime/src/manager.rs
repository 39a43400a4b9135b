//! The runtime's front door: create, start, stop, kill, pause, unpause,
//! remove, list and inspect containers, list their processes, exec into
//! them. Used by the CLI and the reconciler.
//!
//! A paused container's processes are frozen and take no signal (cgroup
//! v1), so everything that signals a container thaws a paused one first.
//!
//! Nothing here forks except [`Runtime::exec`] (call it only from a
//! single-threaded process); starting a container spawns its monitor with
//! `std::process::Command`, which is safe from any process.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio as ProcessStdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::cgroups::CgroupError;
use crate::config::ContainerConfig;
use crate::container::{
    ContainerError, ContainerInfo, ContainerRecord, ContainerState, Files, ImageRef, Paths, Status,
    io_err, monitor_alive, now_rfc3339, valid_id,
};
use crate::monitor::{self, StopRequest};
use crate::oci::{ExecProcess, OciRuntime, Stdio};
use crate::reference::Reference;
use crate::store::{InUse, Store};
use crate::top::Top;
use crate::{cgroups, fsutil, rootfs};
use rcompose_reconciler::wait::ProcessExit;

/// How to start a monitor process: a program and the arguments before
/// `<state_root> <run_dir> <id>` (for the rcompose binary: itself and
/// [`monitor::MONITOR_ARG`]).
#[derive(Clone, Debug)]
pub struct MonitorCommand {
    /// Executable.
    pub program: PathBuf,
    /// Leading arguments.
    pub args: Vec<String>,
}

impl MonitorCommand {
    /// The running executable, re-run with the hidden monitor sub-command.
    pub fn current_exe() -> std::io::Result<MonitorCommand> {
        Ok(MonitorCommand {
            program: std::env::current_exe()?,
            args: vec![monitor::MONITOR_ARG.to_string()],
        })
    }
}

/// Containers of one state root.
#[derive(Clone, Debug)]
pub struct Runtime {
    paths: Paths,
    monitor: MonitorCommand,
}

impl Runtime {
    /// A runtime over `paths`, starting monitors with `monitor`.
    pub fn new(paths: Paths, monitor: MonitorCommand) -> Runtime {
        Runtime { paths, monitor }
    }

    /// Where state lives.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    fn files(&self, id: &str) -> Files {
        Files::new(self.paths.container_dir(id))
    }

    /// The image store of this state root.
    pub fn store(&self) -> Result<Store, ContainerError> {
        Store::open(&self.paths.state_root).map_err(|source| ContainerError::Image {
            id: String::new(),
            reference: String::new(),
            source,
        })
    }

    /// Records a new container of an image already in the store.
    pub fn create(
        &self,
        id: &str,
        config: ContainerConfig,
    ) -> Result<ContainerRecord, ContainerError> {
        if !valid_id(id) {
            return Err(ContainerError::InvalidName(id.to_string()));
        }
        let image_err = |source| ContainerError::Image {
            id: id.to_string(),
            reference: config.image.clone(),
            source,
        };
        let store = self.store()?;
        let name = Reference::parse(&config.image)
            .map(|r| r.to_string())
            .unwrap_or_else(|_| config.image.clone());
        let image = store.get(&name).map_err(image_err)?;
        let files = self.files(id);
        fsutil::create_top_dir(&self.paths.containers_dir())
            .map_err(io_err(&self.paths.containers_dir()))?;
        match std::fs::create_dir(files.dir()) {
            // A create interrupted before its record was written left only
            // the directory: that is no container, so make it afresh.
            Err(e)
                if e.kind() == std::io::ErrorKind::AlreadyExists
                    && !files.path("container.json").exists() =>
            {
                fsutil::remove_dir_all_if_exists(files.dir()).map_err(io_err(files.dir()))?;
                std::fs::create_dir(files.dir()).map_err(io_err(files.dir()))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(ContainerError::Exists(id.to_string()));
            }
            other => other.map_err(io_err(files.dir()))?,
        }
        let record = ContainerRecord {
            id: id.to_string(),
            config,
            image: ImageRef {
                reference: image.reference,
                id: image.id,
                layers: image.layers,
            },
            created: now_rfc3339(),
        };
        let path = files.path("container.json");
        fsutil::write_json(&path, &record).map_err(io_err(&path))?;
        // No state.json yet: a missing one reads as the default state
        // (created), so the first one written is the monitor's.
        Ok(record)
    }

    /// Starts a container's monitor, which starts the container; returns its pid.
    pub fn start(&self, id: &str) -> Result<i32, ContainerError> {
        let info = self.inspect(id)?;
        if monitor_alive(&info.state) {
            return Ok(info.state.pid);
        }
        let files = self.files(id);
        let _ = std::fs::remove_file(files.path("stop.json"));
        let log = files.path("monitor.log");
        let stderr = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(io_err(&log))?;
        let mut child = Command::new(&self.monitor.program)
            .args(&self.monitor.args)
            .arg(&self.paths.state_root)
            .arg(&self.paths.run_dir)
            .arg(id)
            .stdin(ProcessStdio::null())
            .stdout(ProcessStdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(io_err(&self.monitor.program))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let _ = child.wait();
        let start_err = |message: &str| ContainerError::Start {
            id: id.to_string(),
            message: message.to_string(),
        };
        match line.trim().split_once(' ') {
            Some(("started", pid)) => pid.parse().map_err(|_| start_err(line.trim())),
            Some(("error", message)) => Err(start_err(message)),
            _ => Err(start_err(
                "the monitor exited without a word; see monitor.log",
            )),
        }
    }

    /// Stops a container: stop signal, then SIGKILL after the grace period.
    pub fn stop(&self, id: &str, timeout: Option<Duration>) -> Result<(), ContainerError> {
        let files = self.files(id);
        let ContainerInfo { record, state } = self.inspect(id)?;
        if !monitor_alive(&state) {
            return self.recover(id).map(|_| ());
        }
        if state.status == Status::Paused
            && let Err(e) = self.unpause(id)
        {
            // The monitor's SIGKILL after the grace period thaws it anyway.
            tracing::warn!("stop of {id}: {}", monitor::error_chain(&e));
        }
        let request = StopRequest {
            timeout_secs: timeout.map(|t| t.as_secs()),
        };
        // Read once, at the signal: a crash before then loses nothing that
        // matters, so the request is not waited onto the disk.
        let path = files.path("stop.json");
        fsutil::write_json_unsynced(&path, &request).map_err(io_err(&path))?;
        let mut exit = ProcessExit::watch(state.monitor_pid);
        signal_pid(id, state.monitor_pid, Signal::SIGTERM)?;
        let grace = timeout
            .or(record.config.stop_grace_period)
            .unwrap_or(monitor::DEFAULT_GRACE);
        let deadline = Instant::now() + grace + Duration::from_secs(15);
        let mut backoff = crate::container::Backoff::default();
        while Instant::now() < deadline {
            if !monitor_alive(&files.state()?) {
                return Ok(());
            }
            exit.wait(&mut backoff);
        }
        Err(ContainerError::Start {
            id: id.to_string(),
            message: "the monitor did not stop the container in time".into(),
        })
    }

    /// Sends a signal to a running container's PID 1 (a paused one is thawed first).
    pub fn kill(&self, id: &str, signal: Signal) -> Result<(), ContainerError> {
        let state = self.inspect(id)?.state;
        if !matches!(state.status, Status::Running | Status::Paused) || state.pid <= 0 {
            return Err(ContainerError::Start {
                id: id.to_string(),
                message: "container is not running".into(),
            });
        }
        if state.status == Status::Paused {
            self.unpause(id)?;
        }
        signal_pid(id, state.pid, signal)
    }

    /// Freezes every process of a running container (cgroup freezer) and
    /// records it paused; pausing a paused container does nothing.
    pub fn pause(&self, id: &str) -> Result<(), ContainerError> {
        self.inspect(id)?;
        let _exec = self.files(id).exec_lock()?;
        self.locked(id, |s| match s.status {
            Status::Paused => Ok(()),
            Status::Running if s.pid > 0 => {
                cgroups::freeze(id).map_err(cgroup_err("pause", id))?;
                s.status = Status::Paused;
                Ok(())
            }
            _ => Err(ContainerError::NotRunning(id.to_string())),
        })
    }

    /// Thaws a paused container and records it running; for a running one
    /// it only makes sure that its cgroup is thawed.
    pub fn unpause(&self, id: &str) -> Result<(), ContainerError> {
        self.inspect(id)?;
        self.locked(id, |s| match s.status {
            Status::Paused | Status::Running if s.pid > 0 => {
                cgroups::thaw(id).map_err(cgroup_err("unpause", id))?;
                s.status = Status::Running;
                Ok(())
            }
            _ => Err(ContainerError::NotRunning(id.to_string())),
        })
    }

    /// The processes of a running or paused container, as `ps -ef` shows them.
    pub fn top(&self, id: &str) -> Result<Top, ContainerError> {
        let state = self.inspect(id)?.state;
        if !matches!(state.status, Status::Running | Status::Paused) {
            return Err(ContainerError::NotRunning(id.to_string()));
        }
        let pids = cgroups::pids(id).map_err(cgroup_err("list the processes of", id))?;
        Ok(Top::of(&pids))
    }

    /// Changes the state under the container lock, so that the check of
    /// the status, the cgroup change and the new status are one step for
    /// every other writer (the monitor); an error leaves the state as it was.
    fn locked(
        &self,
        id: &str,
        change: impl FnOnce(&mut ContainerState) -> Result<(), ContainerError>,
    ) -> Result<(), ContainerError> {
        let mut outcome = Ok(());
        self.files(id).update(|state| {
            let mut next = state.clone();
            outcome = change(&mut next);
            if outcome.is_ok() {
                *state = next;
            }
        })?;
        outcome
    }

    /// Removes a container and everything it left (mounts, cgroup, state, files).
    pub fn remove(&self, id: &str, force: bool) -> Result<(), ContainerError> {
        self.remove_alongside(id, force, || ())
    }

    /// [`Self::remove`], running `alongside` on a thread of its own once the
    /// container is known to be stopped (and not before: a running
    /// container is refused untouched), while its run's leftovers and its
    /// files go. The caller tears down what it keeps for the container
    /// elsewhere (its network, say): both wait mostly for the kernel and
    /// the disk, and neither needs the other done.
    pub fn remove_alongside<T: Send>(
        &self,
        id: &str,
        force: bool,
        alongside: impl FnOnce() -> T + Send,
    ) -> Result<T, ContainerError> {
        let info = self.inspect(id)?;
        if monitor_alive(&info.state) {
            if !force {
                return Err(ContainerError::Running(id.to_string()));
            }
            self.stop(id, Some(Duration::ZERO))?;
        }
        std::thread::scope(|scope| {
            let other = scope.spawn(alongside);
            self.cleanup_run(id, info.state.pid);
            let dir = self.paths.container_dir(id);
            let removed = fsutil::remove_dir_all_if_exists(&dir).map_err(io_err(&dir));
            let other = other
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            removed.map(|()| other)
        })
    }

    /// Tears down what a run may have left when its monitor is gone.
    fn cleanup_run(&self, id: &str, pid: i32) {
        // A frozen process dies only once thawed; no cgroup left is fine.
        let _ = cgroups::thaw(id);
        // Killing PID 1 of the container's pid namespace ends every process in it.
        if pid > 0 && in_container_cgroup(pid, id) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            // Its cgroup can only be removed once it is gone.
            wait_gone(pid, Duration::from_secs(5));
        }
        let oci = OciRuntime::new(self.paths.oci_root());
        if oci.load(id).is_ok() {
            if let Err(e) = oci.kill(id, Signal::SIGKILL, true) {
                tracing::debug!("cleanup of {id}: {e}");
            }
            if let Err(e) = oci.delete(id, true) {
                tracing::warn!("cleanup of {id}: {}", monitor::error_chain(&e));
            }
        }
        // A delete that failed half-way (a failing hook, say) must not leave state behind.
        let _ = fsutil::remove_dir_all_if_exists(&self.paths.oci_root().join(id));
        cgroups::remove(id);
        let _ = rootfs::unmount(&self.paths.container_dir(id).join("bundle/rootfs"));
    }

    /// Notices a container whose monitor died (crash, reboot) and marks it dead.
    pub fn recover(&self, id: &str) -> Result<ContainerState, ContainerError> {
        let files = self.files(id);
        let state = files.state()?;
        let stale = state.status.is_live() && !monitor_alive(&state);
        if !stale {
            return Ok(state);
        }
        self.cleanup_run(id, state.pid);
        files.update(|s| {
            s.status = Status::Dead;
            s.pid = 0;
            s.monitor_pid = 0;
            s.finished_at.get_or_insert_with(now_rfc3339);
            s.error
                .get_or_insert_with(|| "its monitor is gone".to_string());
        })
    }

    /// One container.
    pub fn inspect(&self, id: &str) -> Result<ContainerInfo, ContainerError> {
        let files = self.files(id);
        let record = files.record()?;
        let state = self.recover(id)?;
        Ok(ContainerInfo { record, state })
    }

    /// Every container, by id.
    pub fn list(&self) -> Result<Vec<ContainerInfo>, ContainerError> {
        let dir = self.paths.containers_dir();
        let mut ids = Vec::new();
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.map_err(io_err(&dir))?;
                    ids.push(entry.file_name().to_string_lossy().into_owned());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&dir)(e)),
        }
        ids.sort();
        let mut out = Vec::new();
        for id in ids {
            match self.inspect(&id) {
                Ok(info) => out.push(info),
                Err(ContainerError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Images and layers the containers use (for `image rm` and `prune`).
    pub fn in_use(&self) -> Result<InUse, ContainerError> {
        let mut in_use = InUse::default();
        for info in self.list()? {
            in_use
                .images
                .entry(info.record.image.id.clone())
                .or_insert(info.record.id.clone());
            in_use
                .layers
                .extend(info.record.image.layers.iter().cloned());
        }
        Ok(in_use)
    }

    /// Runs a process in a running container; returns its host pid (forks: see module doc).
    pub fn exec(
        &self,
        id: &str,
        process: &ExecProcess,
        stdio: Stdio,
    ) -> Result<i32, ContainerError> {
        self.inspect(id)?;
        // Under the lock, no pause freezes the exec half-way; the status read
        // here is the one the exec meets.
        let _exec = self.files(id).exec_lock()?;
        let state = self.files(id).state()?;
        if state.status != Status::Running {
            let message = match state.status {
                Status::Paused => "container is paused: unpause it first",
                _ => "container is not running",
            };
            return Err(ContainerError::Start {
                id: id.to_string(),
                message: message.into(),
            });
        }
        let process = self.with_container_defaults(id, process);
        Ok(OciRuntime::new(self.paths.oci_root()).exec(id, &process, stdio)?)
    }

    /// An exec runs as the container's user and in its working directory
    /// unless it says otherwise, as `docker exec` does.
    fn with_container_defaults(&self, id: &str, process: &ExecProcess) -> ExecProcess {
        let mut process = process.clone();
        let bundle = self.paths.container_dir(id).join("bundle/config.json");
        let Some(main) = oci_spec::runtime::Spec::load(&bundle)
            .ok()
            .and_then(|s| s.process().clone())
        else {
            return process;
        };
        if process.uid.is_none() {
            process.uid = Some(main.user().uid());
            process.gid = Some(main.user().gid());
        }
        if process.cwd.is_none() {
            process.cwd = Some(main.cwd().clone());
        }
        process
    }

    /// `user[:group]` as ids, looked up in the running container's `/etc/passwd` and `/etc/group`.
    pub fn resolve_user(&self, id: &str, user: &str) -> Result<(u32, u32), ContainerError> {
        let rootfs = self.paths.container_dir(id).join("bundle/rootfs");
        let passwd = crate::prepare::read_in_root(&rootfs, "/etc/passwd");
        let group = crate::prepare::read_in_root(&rootfs, "/etc/group");
        Ok(crate::spec::resolve_user(
            user,
            passwd.as_deref(),
            group.as_deref(),
        )?)
    }

    /// Directory holding a container's log files.
    pub fn log_dir(&self, id: &str) -> PathBuf {
        self.paths.container_dir(id)
    }
}

/// Turns a cgroup error of `action` on container `id` into a [`ContainerError`].
fn cgroup_err<'a>(
    action: &'static str,
    id: &'a str,
) -> impl FnOnce(CgroupError) -> ContainerError + 'a {
    move |source| ContainerError::Cgroup {
        action,
        id: id.to_string(),
        source: Box::new(source),
    }
}

/// Waits until process `pid` has exited (it may stay a zombie of someone else).
fn wait_gone(pid: i32, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut backoff = crate::container::Backoff::default();
    while Instant::now() < deadline {
        if !crate::container::process_running(pid) {
            return;
        }
        backoff.sleep();
    }
}

/// Whether process `pid` is in container `id`'s cgroup (guards against pid reuse).
fn in_container_cgroup(pid: i32, id: &str) -> bool {
    let wanted = cgroups::cgroups_path(id);
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .is_ok_and(|text| text.lines().any(|l| l.ends_with(&wanted)))
}

fn signal_pid(id: &str, pid: i32, signal: Signal) -> Result<(), ContainerError> {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).map_err(|e| {
        ContainerError::Signal {
            id: id.to_string(),
            source: e.into(),
        }
    })
}
