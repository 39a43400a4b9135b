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
use libcontainer::container::tenant_builder::TenantContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::error::LibcontainerError;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::sys::signal::Signal;
use oci_spec::OciSpecError;
use oci_spec::runtime::{Capabilities, LinuxCapabilities, Process, Spec, UserBuilder};

use crate::seccomp_filter::Filter;

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
    /// The seccomp program the bundle's spec names could not be read.
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp_filter::FilterError),
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

impl Stdio {
    /// Hands the streams that are set to a container builder.
    fn apply(self, mut builder: ContainerBuilder) -> ContainerBuilder {
        if let Some(fd) = self.stdin {
            builder = builder.with_stdin(fd);
        }
        if let Some(fd) = self.stdout {
            builder = builder.with_stdout(fd);
        }
        if let Some(fd) = self.stderr {
            builder = builder.with_stderr(fd);
        }
        builder
    }
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
        // Read once here for the seccomp program and the OOM-killer setting.
        let spec = Filter::spec_of(bundle)?;
        let builder = ContainerBuilder::new(id.to_string(), SyscallType::default())
            .with_executor(InitExecutor::new(opts.init, &spec, bundle)?)
            .with_root_path(&self.root)
            .map_err(runtime_err("create", id))?
            .with_pid_file(opts.pid_file.as_ref())
            .map_err(runtime_err("create", id))?
            .with_console_socket(opts.console_socket.as_ref());
        let builder = opts.stdio.apply(builder);
        let container = builder
            .validate_id()
            .map_err(runtime_err("create", id))?
            .as_init(bundle)
            .with_systemd(false)
            .with_detach(true)
            .build()
            .map_err(runtime_err("create", id))?;
        apply_oom_killer_setting(&spec, &container);
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

    /// Forgets a container whose process has exited and been reaped and whose
    /// spec has no hooks: removes its cgroup `cgroups_path` and its state, as
    /// `delete` would, without loading it into libcontainer, whose delete
    /// opens a cgroup manager (two reads of `/proc/self/mountinfo` per
    /// controller, a file that grows with every running container).
    pub fn forget_exited(&self, id: &str, cgroups_path: &str) -> std::io::Result<()> {
        crate::cgroups::remove_path(cgroups_path);
        crate::fsutil::remove_dir_all_if_exists(&self.root.join(id))
    }

    /// Runs an extra process inside a running container; returns its host pid.
    /// With `process.console_socket` it gets a pseudo-terminal instead of `stdio`.
    pub fn exec(&self, id: &str, process: &ExecProcess, stdio: Stdio) -> Result<i32, OciError> {
        // libcontainer gives an exec no seccomp filter of its own: the
        // container's program, when the spec handed it over, is loaded here.
        let bundle = self.load(id)?.bundle().clone();
        let spec = Filter::spec_of(&bundle)?;
        let builder = ContainerBuilder::new(id.to_string(), SyscallType::default())
            .with_executor(InitExecutor::new(false, &spec, &bundle)?)
            .with_root_path(&self.root)
            .map_err(runtime_err("exec in", id))?
            .with_console_socket(process.console_socket.as_ref());
        let builder = stdio.apply(builder);
        let tenant = builder.as_tenant().with_detach(true);
        let pid = match &process.console_socket {
            Some(socket) => self.exec_with_terminal(id, tenant, process, socket)?,
            None => tenant
                .with_container_args(process.args.clone())
                .with_env(process.env.clone().into_iter().collect())
                .with_cwd(process.cwd.as_ref())
                .with_user(process.uid)
                .with_group(process.gid)
                .build()
                .map_err(runtime_err("exec in", id))?,
        };
        Ok(pid.as_raw())
    }

    /// The tenant builder has no option for `process.terminal`, so the whole
    /// process goes in as a `process.json`, removed once the process runs.
    fn exec_with_terminal(
        &self,
        id: &str,
        tenant: TenantContainerBuilder,
        process: &ExecProcess,
        socket: &Path,
    ) -> Result<nix::unistd::Pid, OciError> {
        let container = self.load(id)?;
        let spec = Spec::load(container.bundle().join("config.json"))
            .map_err(|e| runtime_err("exec in", id)(e.into()))?;
        let terminal_process = tty_process(spec.process().as_ref(), process)
            .map_err(|e| runtime_err("exec in", id)(e.into()))?;
        let dir = self.root.join(id);
        let path = dir.join(format!("exec-process-{}.json", std::process::id()));
        let json = serde_json::to_vec(&terminal_process)
            .map_err(|e| runtime_err("exec in", id)(LibcontainerError::OtherSerialization(e)))?;
        write_private(&path, &json)
            .map_err(|e| runtime_err("exec in", id)(LibcontainerError::OtherIO(e)))?;
        let built = tenant.with_process(Some(&path)).build();
        let _ = std::fs::remove_file(&path);
        remove_console_links(&dir, socket);
        built.map_err(runtime_err("exec in", id))
    }
}

/// Writes `bytes` to a new file only root can read: it holds the exec's environment.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?
        .write_all(bytes)
}

/// Removes the links to `socket` that libcontainer leaves in the container's
/// state directory (`tenant-tty-*.sock`, one per exec with a terminal).
fn remove_console_links(dir: &Path, socket: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let is_tty_link = entry
            .file_name()
            .to_string_lossy()
            .starts_with("tenant-tty-");
        if is_tty_link && std::fs::read_link(entry.path()).is_ok_and(|target| target == socket) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The process of an exec with a terminal: what libcontainer's tenant builder
/// makes of the same options (`TenantContainerBuilder::adapt_spec_for_tenant`),
/// plus `terminal` and a default `TERM`. `init` is the container's process.
fn tty_process(init: Option<&Process>, exec: &ExecProcess) -> Result<Process, OciSpecError> {
    let mut process = Process::default();
    let init_env = init.and_then(|p| p.env().as_deref()).unwrap_or_default();
    process
        .set_terminal(Some(true))
        .set_args(Some(exec.args.clone()))
        .set_env(Some(tty_env(init_env, &exec.env)))
        .set_capabilities(Some(tenant_capabilities(
            init.and_then(|p| p.capabilities().as_ref()),
        )))
        .set_user(
            UserBuilder::default()
                .uid(exec.uid.unwrap_or(0))
                .gid(exec.gid.unwrap_or(0))
                .build()?,
        );
    if let Some(cwd) = &exec.cwd {
        process.set_cwd(cwd.clone());
    }
    if let Some(init) = init {
        process.set_exec_cpu_affinity(init.exec_cpu_affinity().clone());
        if let Some(no_new_privileges) = init.no_new_privileges() {
            process.set_no_new_privileges(Some(no_new_privileges));
        }
    }
    Ok(process)
}

/// The container's environment overridden by the exec's; a terminal gets
/// `TERM=xterm` unless either names one, as `docker exec -t` does.
fn tty_env(init: &[String], overrides: &[(String, String)]) -> Vec<String> {
    let key = |entry: &str| entry.split('=').next().unwrap_or("").to_string();
    let mut env: Vec<String> = init
        .iter()
        .filter(|entry| !overrides.iter().any(|(k, _)| *k == key(entry)))
        .cloned()
        .collect();
    env.extend(overrides.iter().map(|(k, v)| format!("{k}={v}")));
    if !env.iter().any(|entry| key(entry) == "TERM") {
        env.push("TERM=xterm".to_string());
    }
    env
}

/// The capabilities libcontainer gives an exec with no extra ones: the
/// container's sets, with inheritable and ambient only when inheritable is set.
fn tenant_capabilities(init: Option<&LinuxCapabilities>) -> LinuxCapabilities {
    let set = |pick: fn(&LinuxCapabilities) -> &Option<Capabilities>| {
        Some(init.and_then(|c| pick(c).clone()).unwrap_or_default())
    };
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(set(LinuxCapabilities::bounding))
        .set_effective(set(LinuxCapabilities::effective))
        .set_permitted(set(LinuxCapabilities::permitted));
    match init.and_then(|c| c.inheritable().clone()) {
        Some(inheritable) => caps
            .set_inheritable(Some(inheritable))
            .set_ambient(set(LinuxCapabilities::ambient)),
        None => caps.set_inheritable(None).set_ambient(None),
    };
    caps
}

/// libcontainer 0.7 leaves `linux.resources.memory.disableOOMKiller` unapplied;
/// on cgroup v1 it is one file (`memory.oom_control`) of the container's cgroup.
fn apply_oom_killer_setting(spec: &Spec, container: &Container) {
    let linux = spec.linux().as_ref();
    let disable = linux
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.disable_oom_killer())
        .unwrap_or(false);
    let Some(pid) = container.pid().filter(|_| disable) else {
        return;
    };
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let memory = cgroups.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then(|| path.to_string())
    });
    if let Some(path) = memory {
        let file = Path::new("/sys/fs/cgroup/memory")
            .join(path.trim_start_matches('/'))
            .join("memory.oom_control");
        if let Err(e) = std::fs::write(&file, "1") {
            tracing::warn!(
                "failed to disable the OOM killer in {}: {e}",
                file.display()
            );
        }
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
    /// Unix socket that receives the master of a pseudo-terminal made for the
    /// process (`docker exec -t`); the process's stdio is then that terminal.
    pub console_socket: Option<PathBuf>,
}

/// Runs the container's command, optionally under the built-in init, after
/// loading the seccomp program the spec handed over (`seccomp_filter`).
#[derive(Clone)]
struct InitExecutor {
    init: bool,
    filter: Option<Filter>,
}

impl InitExecutor {
    /// The executor of a process of the container whose bundle holds `spec`.
    fn new(init: bool, spec: &Spec, bundle: &Path) -> Result<InitExecutor, OciError> {
        let filter = Filter::for_spec(spec, bundle)?;
        Ok(InitExecutor { init, filter })
    }
}

impl Executor for InitExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let filter = self.filter.as_ref();
        Filter::check(spec, filter).map_err(|e| ExecutorError::Other(e.to_string()))?;
        if let Some(filter) = filter {
            filter
                .install()
                .map_err(|e| ExecutorError::Other(e.to_string()))?;
        }
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

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{Capability, ProcessBuilder};

    use super::*;

    fn exec(args: &[&str]) -> ExecProcess {
        ExecProcess {
            args: args.iter().map(|a| a.to_string()).collect(),
            ..ExecProcess::default()
        }
    }

    #[test]
    fn a_terminal_exec_gets_term_unless_the_container_or_the_exec_names_one() {
        let init = ["PATH=/bin".to_string()];
        assert_eq!(tty_env(&init, &[]), ["PATH=/bin", "TERM=xterm"]);
        let with_term = ["TERM=vt100".to_string()];
        assert_eq!(tty_env(&with_term, &[]), ["TERM=vt100"]);
        let overrides = [("TERM".to_string(), "screen".to_string())];
        assert_eq!(tty_env(&with_term, &overrides), ["TERM=screen"]);
    }

    #[test]
    fn exec_variables_override_the_containers() {
        let init = ["A=1".to_string(), "B=2".to_string(), "TERM=x".to_string()];
        let overrides = [("A".to_string(), "9".to_string())];
        assert_eq!(tty_env(&init, &overrides), ["B=2", "TERM=x", "A=9"]);
    }

    #[test]
    fn a_terminal_process_keeps_what_a_plain_exec_would_get() {
        let caps: Capabilities = [Capability::Chown, Capability::Kill].into();
        let mut init_caps = LinuxCapabilities::default();
        init_caps
            .set_bounding(Some(caps.clone()))
            .set_effective(Some(caps.clone()))
            .set_permitted(Some(caps.clone()))
            .set_inheritable(None)
            .set_ambient(Some(caps.clone()));
        let init = ProcessBuilder::default()
            .env(vec!["PATH=/bin".to_string()])
            .capabilities(init_caps)
            .no_new_privileges(false)
            .build()
            .unwrap();
        let mut process = exec(&["tty"]);
        process.uid = Some(1000);
        process.cwd = Some("/tmp".into());

        let made = tty_process(Some(&init), &process).unwrap();
        assert_eq!(made.terminal(), Some(true));
        assert_eq!(made.args().as_deref(), Some(&["tty".to_string()][..]));
        assert_eq!(made.cwd(), Path::new("/tmp"));
        assert_eq!((made.user().uid(), made.user().gid()), (1000, 0));
        assert_eq!(made.no_new_privileges(), Some(false));
        let made_caps = made.capabilities().as_ref().unwrap();
        assert_eq!(made_caps.bounding().as_ref(), Some(&caps));
        assert_eq!(made_caps.permitted().as_ref(), Some(&caps));
        // libcontainer drops ambient capabilities without inheritable ones.
        assert_eq!(made_caps.ambient(), &None);
        assert_eq!(made_caps.inheritable(), &None);
    }

    #[test]
    fn a_terminal_process_in_a_container_without_capabilities_gets_none() {
        let made = tty_process(None, &exec(&["sh"])).unwrap();
        let made_caps = made.capabilities().as_ref().unwrap();
        assert_eq!(made_caps.effective().as_ref(), Some(&Capabilities::new()));
        assert_eq!(made.no_new_privileges(), Some(true));
        assert_eq!(made.cwd(), Path::new("/"));
    }
}
