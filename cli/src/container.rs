//! `rcompose container …`: single containers on this host, by name, the way
//! `docker container` handles them (run, create, start, stop, kill, rm, ls,
//! inspect, logs, exec, stats).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use rcompose_runtime::ContainerConfig;
use rcompose_runtime::container::{ContainerInfo, Status};
use rcompose_runtime::logs::{self, LogQuery};
use rcompose_runtime::manager::Runtime;
use rcompose_runtime::oci::{ExecProcess, Stdio};
use rcompose_runtime::store::Store;
use rcompose_runtime::tty;

use crate::host::HostArgs;
use crate::image::{self, PullArgs};
use crate::network;
use crate::volume;

/// Options of `rcompose container`.
#[derive(Args, Debug)]
pub struct ContainerArgs {
    #[command(subcommand)]
    command: ContainerCommand,
}

#[derive(Subcommand, Debug)]
enum ContainerCommand {
    /// Create and start a container (pulling its image when missing).
    Run(CreateArgs),
    /// Create a container without starting it.
    Create(CreateArgs),
    /// Start containers.
    Start {
        /// Names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Stop containers: stop signal, then SIGKILL after the grace period.
    Stop {
        /// Grace period in seconds (default: the container's, else 10).
        #[arg(short, long)]
        time: Option<u64>,
        /// Names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Send a signal to containers.
    Kill {
        /// Signal (name or number).
        #[arg(short, long, default_value = "SIGKILL")]
        signal: String,
        /// Names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove containers.
    Rm {
        /// Stop running ones first (no `-f`: that names stack files).
        #[arg(long)]
        force: bool,
        /// Remove the container's anonymous volumes too.
        #[arg(short = 'v', long)]
        volumes: bool,
        /// Names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// List containers.
    #[command(alias = "ps")]
    Ls {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a container's record and state as JSON.
    Inspect {
        /// Name.
        name: String,
    },
    /// Print a container's output.
    Logs(LogsArgs),
    /// Run a command in a running container.
    Exec(ExecArgs),
    /// Print resource usage.
    Stats {
        /// Names (default: every running container).
        names: Vec<String>,
    },
}

/// Options of `container create` and `container run`.
#[derive(Args, Debug)]
struct CreateArgs {
    /// Container name.
    #[arg(long)]
    name: String,
    /// Environment variable `KEY=VALUE` (repeatable).
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// Memory limit in bytes.
    #[arg(long)]
    memory: Option<i64>,
    /// Maximum number of tasks.
    #[arg(long)]
    pids_limit: Option<i64>,
    /// Run the built-in init as PID 1.
    #[arg(long)]
    init: bool,
    /// Read-only root filesystem.
    #[arg(long)]
    read_only: bool,
    /// Restart policy: no, always, on-failure[:N], unless-stopped.
    #[arg(long, default_value = "no")]
    restart: String,
    /// User `name|uid[:group|gid]`.
    #[arg(short, long)]
    user: Option<String>,
    #[command(flatten)]
    net: network::ContainerNetArgs,
    #[command(flatten)]
    vols: volume::ContainerVolumeArgs,
    /// Image.
    image: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Args, Debug)]
struct LogsArgs {
    /// Keep printing new output (no `-f`: that names stack files).
    #[arg(long)]
    follow: bool,
    /// Number of lines from the end (`all` for everything).
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Only output after this time (RFC 3339, unix seconds, or a duration like `10m`).
    #[arg(long)]
    since: Option<String>,
    /// Only output before this time.
    #[arg(long)]
    until: Option<String>,
    /// Prefix each line with its time.
    #[arg(short, long)]
    timestamps: bool,
    /// Name.
    name: String,
}

/// Options of `exec`.
#[derive(Args, Debug, Clone)]
pub struct ExecArgs {
    /// Environment variable `KEY=VALUE` (repeatable).
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Numeric `uid[:gid]`.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Give the command a pseudo-terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Keep stdin open (with `--tty`: forward it to the terminal).
    #[arg(short, long)]
    pub interactive: bool,
    /// Name.
    pub name: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

/// Runs the command.
pub fn run(host: &HostArgs, args: &ContainerArgs) -> anyhow::Result<ExitCode> {
    let runtime = host.runtime()?;
    match &args.command {
        ContainerCommand::Run(create) => {
            create_container(host, &runtime, create)?;
            let pid = runtime.start(&create.name)?;
            println!("{} {pid}", create.name);
        }
        ContainerCommand::Create(create) => {
            create_container(host, &runtime, create)?;
            println!("{}", create.name);
        }
        ContainerCommand::Start { names } => each(names, |n| runtime.start(n).map(drop))?,
        ContainerCommand::Stop { time, names } => {
            each(names, |n| runtime.stop(n, time.map(Duration::from_secs)))?;
        }
        ContainerCommand::Kill { signal, names } => {
            let signal = rcompose_runtime::spec::parse_signal(signal)?;
            each(names, |n| runtime.kill(n, signal))?;
        }
        ContainerCommand::Rm {
            force,
            volumes,
            names,
        } => each(names, |n| {
            runtime.remove(n, *force)?;
            network::release(host, n);
            if *volumes {
                volume::remove_anonymous(host, n)?;
            }
            Ok::<_, anyhow::Error>(())
        })?,
        ContainerCommand::Ls { json } => list(&runtime, *json)?,
        ContainerCommand::Inspect { name } => {
            let info = runtime.inspect(name)?;
            println!("{}", serde_json::to_string_pretty(&info)?);
        }
        ContainerCommand::Logs(logs_args) => return print_logs(&runtime, logs_args),
        ContainerCommand::Exec(exec_args) => return exec(&runtime, exec_args),
        ContainerCommand::Stats { names } => stats(&runtime, names)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `action` on every name, printing each name done; fails if any failed.
fn each<E: std::fmt::Display>(
    names: &[String],
    mut action: impl FnMut(&str) -> Result<(), E>,
) -> anyhow::Result<()> {
    let mut failed = 0;
    for name in names {
        match action(name) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} containers failed", names.len());
    }
    Ok(())
}

fn create_container(host: &HostArgs, runtime: &Runtime, args: &CreateArgs) -> anyhow::Result<()> {
    let store = Store::open(&host.root)?;
    if store.get(&image::normalize(&args.image)).is_err() {
        let pull = PullArgs {
            image: args.image.clone(),
            insecure_registries: Vec::new(),
            quiet: true,
        };
        image::pull(&store, &pull)?;
    }
    // Bad arguments must fail before anything is made.
    let env = parse_env(&args.env)?;
    let restart = parse_restart(&args.restart)?;
    let made = volume::mounts(host, &args.name, &args.vols).and_then(|mut mounts| {
        let net = network::prepare(host, &args.name, &args.net)?;
        mounts.extend(net.mounts);
        let config = ContainerConfig {
            image: args.image.clone(),
            hostname: args.net.hostname.clone(),
            netns_path: net.netns,
            network_host: net.host,
            mounts,
            command: (!args.command.is_empty()).then(|| args.command.clone()),
            env,
            memory: args.memory,
            pids_limit: args.pids_limit,
            init: args.init,
            read_only: args.read_only,
            user: args.user.clone(),
            restart,
            ..ContainerConfig::default()
        };
        Ok(runtime.create(&args.name, config)?)
    });
    if let Err(e) = made {
        // Leave nothing of a container that does not exist.
        network::release(host, &args.name);
        if let Err(cleanup) = volume::remove_anonymous(host, &args.name) {
            eprintln!("warning: volume cleanup of {}: {cleanup:#}", args.name);
        }
        return Err(e);
    }
    Ok(())
}

fn parse_env(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => std::env::var(pair)
                .map(|v| (pair.clone(), v))
                .with_context(|| format!("environment variable {pair} has no value")),
        })
        .collect()
}

/// A restart policy as `docker run --restart` spells it.
pub fn parse_restart(text: &str) -> anyhow::Result<rcompose_runtime::RestartPolicy> {
    use rcompose_runtime::RestartPolicy;
    Ok(match text.split_once(':') {
        None if text == "no" => RestartPolicy::No,
        None if text == "always" => RestartPolicy::Always,
        None if text == "unless-stopped" => RestartPolicy::UnlessStopped,
        None if text == "on-failure" => RestartPolicy::OnFailure { max_retries: None },
        Some(("on-failure", n)) => RestartPolicy::OnFailure {
            max_retries: Some(
                n.parse()
                    .with_context(|| format!("invalid retry count {n:?}"))?,
            ),
        },
        _ => bail!(
            "invalid restart policy {text:?}: use no, always, on-failure[:N] or unless-stopped"
        ),
    })
}

fn status_text(info: &ContainerInfo) -> String {
    let state = &info.state;
    let health = state.health.as_ref().map(|h| {
        format!(
            " ({})",
            serde_json::to_value(h.status)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        )
    });
    match state.status {
        Status::Running => format!("running{}", health.unwrap_or_default()),
        Status::Paused => "paused".to_string(),
        Status::Exited => format!("exited ({})", state.exit_code.unwrap_or(0)),
        Status::Restarting => format!("restarting ({})", state.exit_code.unwrap_or(0)),
        Status::Created => "created".to_string(),
        Status::Dead => "dead".to_string(),
    }
}

fn list(runtime: &Runtime, json: bool) -> anyhow::Result<()> {
    let containers = runtime.list()?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&containers)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<30} {:<40} {:<24} {:>8}",
        "NAME", "IMAGE", "STATUS", "PID"
    )?;
    for info in &containers {
        let status = status_text(info);
        let pid = info.state.pid;
        writeln!(
            out,
            "{:<30} {:<40} {status:<24} {pid:>8}",
            info.record.id, info.record.image.reference
        )?;
    }
    Ok(())
}

fn print_logs(runtime: &Runtime, args: &LogsArgs) -> anyhow::Result<ExitCode> {
    runtime.inspect(&args.name)?;
    let now = SystemTime::now();
    let time = |text: &Option<String>| -> anyhow::Result<Option<SystemTime>> {
        text.as_ref()
            .map(|t| logs::parse_since(t, now).with_context(|| format!("invalid time {t:?}")))
            .transpose()
    };
    let query = LogQuery {
        tail: match args.tail.as_str() {
            "all" => None,
            n => Some(n.parse().with_context(|| format!("invalid --tail {n:?}"))?),
        },
        since: time(&args.since)?,
        until: time(&args.until)?,
        timestamps: args.timestamps,
    };
    let dir = runtime.log_dir(&args.name);
    let mut out = std::io::stdout().lock();
    if !args.follow {
        for entry in logs::read_logs(&dir, &query)? {
            out.write_all(logs::render(&entry, args.timestamps).as_bytes())?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (entries, mut follower) = logs::follow(&dir, &query)?;
    for entry in entries {
        out.write_all(logs::render(&entry, args.timestamps).as_bytes())?;
    }
    out.flush()?;
    loop {
        for entry in follower.poll_new()? {
            out.write_all(logs::render(&entry, args.timestamps).as_bytes())?;
        }
        out.flush()?;
        let state = runtime.inspect(&args.name)?.state;
        if !matches!(state.status, Status::Running | Status::Restarting) {
            for entry in follower.poll_new()? {
                out.write_all(logs::render(&entry, args.timestamps).as_bytes())?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs a command in the container with this terminal's stdio, or a new
/// pseudo-terminal with `--tty`; exits with its status.
pub fn exec(runtime: &Runtime, args: &ExecArgs) -> anyhow::Result<ExitCode> {
    let (uid, gid) = match &args.user {
        None => (None, None),
        Some(user) => {
            let (uid, gid) = runtime.resolve_user(&args.name, user)?;
            (Some(uid), Some(gid))
        }
    };
    let process = ExecProcess {
        args: args.command.clone(),
        env: parse_env(&args.env)?.into_iter().collect(),
        cwd: args.workdir.as_ref().map(Into::into),
        uid,
        gid,
        console_socket: None,
    };
    if args.tty {
        return exec_with_tty(runtime, args, process);
    }
    let pid = runtime.exec(&args.name, &process, Stdio::default())?;
    Ok(ExitCode::from(wait_exit_code(pid)))
}

/// `exec --tty`: the pty master comes back over a console socket and this
/// process relays between it and its own stdio until the command is done.
fn exec_with_tty(
    runtime: &Runtime,
    args: &ExecArgs,
    process: ExecProcess,
) -> anyhow::Result<ExitCode> {
    use std::os::fd::AsFd as _;
    let socket = tty::ConsoleSocket::bind(&runtime.paths().run_dir.join("tty"))?;
    let process = ExecProcess {
        console_socket: Some(socket.path().to_path_buf()),
        ..process
    };
    let pid = runtime.exec(&args.name, &process, Stdio::default())?;
    let master = socket.receive_master()?;
    drop(socket);
    tty::attach(master.as_fd(), pid, args.interactive)?;
    Ok(ExitCode::from(wait_exit_code(pid)))
}

/// Waits for a process this one started (a clone child: `__WALL`), as an exit code.
pub fn wait_exit_code(pid: i32) -> u8 {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Exited(_, code)) => return code as u8,
            Ok(WaitStatus::Signaled(_, signal, _)) => return 128u8.wrapping_add(signal as u8),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 255,
        }
    }
}

fn stats(runtime: &Runtime, names: &[String]) -> anyhow::Result<()> {
    let names: Vec<String> = if names.is_empty() {
        let running = runtime
            .list()?
            .into_iter()
            .filter(|c| c.state.status == Status::Running);
        running.map(|c| c.record.id).collect()
    } else {
        names.to_vec()
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<30} {:>24} {:>12} {:>6}",
        "NAME", "MEM USAGE / LIMIT", "CPU TIME", "PIDS"
    )?;
    for name in names {
        runtime.inspect(&name)?;
        let usage = rcompose_runtime::cgroups::usage(&name).unwrap_or_default();
        let limit = if usage.memory_limit == 0 {
            "-".to_string()
        } else {
            image::human_size(usage.memory_limit)
        };
        let memory = format!("{} / {limit}", image::human_size(usage.memory_bytes));
        let cpu = format!("{:.2}s", usage.cpu_nanos as f64 / 1e9);
        writeln!(out, "{name:<30} {memory:>24} {cpu:>12} {:>6}", usage.pids)?;
    }
    Ok(())
}
