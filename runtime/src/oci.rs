//! The OCI runtime layer: create, start, state, kill, delete and exec of a
//! container described by a bundle (`config.json` + rootfs), following the
//! OCI runtime specification's lifecycle. Namespaces, `pivot_root`, mounts,
//! masked paths, devices, capabilities, seccomp, rlimits and cgroups (v1 and
//! v2) are done by youki's `libcontainer`.
//!
//! Every function here forks. Call them only from a single-threaded process
//! (the per-container monitor, or the CLI before it starts any thread pool).
//!
//! State layout: `<oci_root>/<id>/state.json`, owned by libcontainer.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::sys::signal::Signal;
use oci_spec::runtime::Spec;

/// Why an OCI runtime operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// libcontainer refused or failed.
    #[error("failed to {action} container {id}")]
    Runtime {
        /// What was being done (`create`, `start`, …).
        action: &'static str,
        /// Container id.
        id: String,
        /// Cause.
        #[source]
        source: Box<libcontainer::error::LibcontainerError>,
    },
    /// The state root could not be created.
    #[error("failed to create runtime root {path}")]
    Root {
        /// The root.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// No container with that id in this root.
    #[error("container {0} does not exist")]
    NotFound(String),
}

/// Standard streams handed to the container's process.
#[derive(Default)]
pub struct Stdio {
    /// stdin (default: inherited).
    pub stdin: Option<OwnedFd>,
    /// stdout (default: inherited).
    pub stdout: Option<OwnedFd>,
    /// stderr (default: inherited).
    pub stderr: Option<OwnedFd>,
}

/// Options of `create`.
#[derive(Default)]
pub struct CreateOptions {
    /// Where the container's host pid is written.
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when `process.terminal` is set.
    pub console_socket: Option<PathBuf>,
    /// Run the built-in init as PID 1 (forwards signals, reaps zombies).
    pub init: bool,
    /// Standard streams.
    pub stdio: Stdio,
}

/// A runtime root: the directory holding the state of its containers.
#[derive(Clone, Debug)]
pub struct OciRuntime {
    root: PathBuf,
}

fn runtime_err<'a>(
    action: &'static str,
    id: &'a str,
) -> impl FnOnce(libcontainer::error::LibcontainerError) -> OciError + 'a {
    move |source| OciError::Runtime {
        action,
        id: id.to_string(),
        source: Box::new(source),
    }
}

impl OciRuntime {
    /// A runtime keeping state under `root` (created when needed).
    pub fn new(root: impl Into<PathBuf>) -> OciRuntime {
        OciRuntime { root: root.into() }
    }

    /// The state root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the container: its process waits for `start`. Returns its host pid.
    pub fn create(&self, id: &str, bundle: &Path, opts: CreateOptions) -> Result<i32, OciError> {
        std::fs::create_dir_all(&self.root).map_err(|source| OciError::Root {
            path: self.root.clone(),
            source,
        })?;
        let mut builder = ContainerBuilder::new(id.to_string(), SyscallType::default())
            .with_executor(InitExecutor { init: opts.init })
            .with_root_path(&self.root)
            .map_err(runtime_err("create", id))?
            .with_pid_file(opts.pid_file.as_ref())
            .map_err(runtime_err("create", id))?
            .with_console_socket(opts.console_socket.as_ref());
        if let Some(fd) = opts.stdio.stdin {
            builder = builder.with_stdin(fd);
        }
        if let Some(fd) = opts.stdio.stdout {
            builder = builder.with_stdout(fd);
        }
        if let Some(fd) = opts.stdio.stderr {
            builder = builder.with_stderr(fd);
        }
        let container = builder
            .validate_id()
            .map_err(runtime_err("create", id))?
            .as_init(bundle)
            .with_systemd(false)
            .with_detach(true)
            .build()
            .map_err(runtime_err("create", id))?;
        Ok(container.pid().map_or(0, |p| p.as_raw()))
    }

    /// Loads a container's state.
    pub fn load(&self, id: &str) -> Result<Container, OciError> {
        let dir = self.root.join(id);
        if !dir.join("state.json").exists() {
            return Err(OciError::NotFound(id.to_string()));
        }
        let mut container = Container::load(dir).map_err(runtime_err("load", id))?;
        container
            .refresh_status()
            .map_err(runtime_err("load", id))?;
        Ok(container)
    }

    /// Starts a created container's process.
    pub fn start(&self, id: &str) -> Result<(), OciError> {
        self.load(id)?.start().map_err(runtime_err("start", id))
    }

    /// The OCI state of a container (`ociVersion`, `id`, `status`, `pid`, `bundle`, …).
    pub fn state(&self, id: &str) -> Result<serde_json::Value, OciError> {
        let container = self.load(id)?;
        let status = match container.status() {
            ContainerStatus::Creating => "creating",
            ContainerStatus::Created => "created",
            ContainerStatus::Running => "running",
            ContainerStatus::Stopped => "stopped",
            ContainerStatus::Paused => "paused",
        };
        Ok(serde_json::json!({
            "ociVersion": "1.2.0",
            "id": container.id(),
            "status": status,
            "pid": container.pid().map_or(0, |p| p.as_raw()),
            "bundle": container.bundle(),
            "annotations": container.state.annotations.clone().unwrap_or_default(),
        }))
    }

    /// Sends a signal to the container's process (or every process with `all`).
    pub fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<(), OciError> {
        self.load(id)?
            .kill(signal, all)
            .map_err(runtime_err("kill", id))
    }

    /// Deletes a stopped container (any container with `force`): cgroup, state.
    pub fn delete(&self, id: &str, force: bool) -> Result<(), OciError> {
        match self.load(id) {
            Ok(mut container) => container.delete(force).map_err(runtime_err("delete", id)),
            Err(OciError::NotFound(_)) if force => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Runs an extra process inside a running container; returns its host pid.
    pub fn exec(&self, id: &str, process: &ExecProcess, stdio: Stdio) -> Result<i32, OciError> {
        let mut builder = ContainerBuilder::new(id.to_string(), SyscallType::default())
            .with_executor(InitExecutor { init: false })
            .with_root_path(&self.root)
            .map_err(runtime_err("exec in", id))?;
        if let Some(fd) = stdio.stdin {
            builder = builder.with_stdin(fd);
        }
        if let Some(fd) = stdio.stdout {
            builder = builder.with_stdout(fd);
        }
        if let Some(fd) = stdio.stderr {
            builder = builder.with_stderr(fd);
        }
        let pid = builder
            .as_tenant()
            .with_container_args(process.args.clone())
            .with_env(process.env.clone().into_iter().collect())
            .with_cwd(process.cwd.as_ref())
            .with_user(process.uid)
            .with_group(process.gid)
            .with_detach(true)
            .build()
            .map_err(runtime_err("exec in", id))?;
        Ok(pid.as_raw())
    }
}

/// An extra process to run in a container.
#[derive(Clone, Debug, Default)]
pub struct ExecProcess {
    /// argv.
    pub args: Vec<String>,
    /// Environment added to the container's.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// User id (the container's when `None`).
    pub uid: Option<u32>,
    /// Group id.
    pub gid: Option<u32>,
}

/// Runs the container's command, optionally under the built-in init.
#[derive(Clone)]
struct InitExecutor {
    init: bool,
}

impl Executor for InitExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        // The monitor blocks the signals it takes through a signalfd; a blocked
        // mask survives exec, so the workload gets a clean one.
        let empty = nix::sys::signal::SigSet::empty();
        let _ = nix::sys::signal::sigprocmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&empty),
            None,
        );
        if self.init {
            crate::init::run_as_init(spec)
        } else {
            libcontainer::workload::default::get_executor().exec(spec)
        }
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        libcontainer::workload::default::get_executor().validate(spec)
    }
}
