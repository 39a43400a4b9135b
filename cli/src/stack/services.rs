//! The commands that act on a project's containers as they are: `ps`,
//! `logs`, `exec`, `start`, `stop`, `restart`, `kill`, `rm`, `pull`,
//! `images`, `port`, `ls`, `pause`, `unpause`, `top`, `events`, and the log
//! streaming of an attached `up`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use clap::{Subcommand, ValueEnum};
use rcompose_reconciler::backend::{
    ContainerBackend as _, ImageBackend as _, LABEL_PROJECT, LABEL_REPLICA, LABEL_SERVICE,
};
use rcompose_runtime::container::{ContainerInfo, Status};
use rcompose_runtime::logs::{self, LogQuery};

use super::Session;
use crate::ProjectArgs;
use crate::container::{self, ExecArgs};
use crate::host::HostArgs;

/// The commands on a project's existing containers.
#[derive(Subcommand, Debug)]
pub enum ServiceCommand {
    /// List the project's containers.
    Ps {
        /// Include stopped containers.
        #[arg(short, long)]
        all: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
        /// Only names.
        #[arg(short, long)]
        quiet: bool,
        /// Services (default: all).
        services: Vec<String>,
    },
    /// Print the output of the project's containers.
    Logs {
        /// Keep printing new output (no `-f`: that names stack files).
        #[arg(long)]
        follow: bool,
        /// Number of lines from the end of each container's log (`all` for everything).
        #[arg(short = 'n', long, default_value = "all")]
        tail: String,
        /// Only output after this time (RFC 3339, unix seconds, or a duration like `10m`).
        #[arg(long)]
        since: Option<String>,
        /// Prefix each line with its time.
        #[arg(short, long)]
        timestamps: bool,
        /// Don't prefix lines with the container name.
        #[arg(long)]
        no_log_prefix: bool,
        /// Services (default: all).
        services: Vec<String>,
    },
    /// Run a command in a service's running container.
    Exec {
        /// Replica number.
        #[arg(long, default_value_t = 1)]
        index: u32,
        #[command(flatten)]
        exec: ExecArgs,
    },
    /// Start the project's stopped containers.
    Start {
        /// Services (default: all).
        services: Vec<String>,
    },
    /// Stop the project's containers.
    Stop {
        /// Seconds to wait before killing (default: each container's grace period).
        #[arg(short = 't', long)]
        timeout: Option<u64>,
        /// Services (default: all).
        services: Vec<String>,
    },
    /// Stop and start the project's containers.
    Restart {
        /// Seconds to wait before killing (default: each container's grace period).
        #[arg(short = 't', long)]
        timeout: Option<u64>,
        /// Services (default: all).
        services: Vec<String>,
    },
    /// Send a signal to the project's running containers.
    Kill {
        /// Signal (name or number).
        #[arg(short, long, default_value = "SIGKILL")]
        signal: String,
        /// Services (default: all).
        services: Vec<String>,
    },
    /// Remove the project's stopped containers.
    Rm {
        /// Stop running ones first.
        #[arg(short, long)]
        stop: bool,
        /// Remove their anonymous volumes too.
        #[arg(short, long)]
        volumes: bool,
        /// Services (default: all).
        services: Vec<String>,
    },
    /// Pull the images of the project's services.
    Pull {
        /// Registry reachable over plain HTTP (repeatable).
        #[arg(long = "insecure-registry")]
        insecure_registries: Vec<String>,
        /// Services (default: all).
        services: Vec<String>,
    },
    /// List the images the project's containers run.
    Images,
    /// Print the host address a container port is published on.
    Port {
        /// Replica number.
        #[arg(long, default_value_t = 1)]
        index: u32,
        /// Protocol.
        #[arg(long, default_value = "tcp")]
        protocol: String,
        /// Service.
        service: String,
        /// Container port.
        port: u16,
    },
    /// Freeze the processes of the project's running containers.
    Pause {
        /// Services (default: all).
        services: Vec<String>,
    },
    /// Thaw the project's paused containers.
    Unpause {
        /// Services (default: all).
        services: Vec<String>,
    },
    /// Show the processes of the project's running containers.
    Top {
        /// Services (default: all).
        services: Vec<String>,
    },
    /// Print the events of the project's containers as they happen, until interrupted.
    Events {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Services (default: all).
        services: Vec<String>,
    },
    /// List the projects on this host.
    Ls {
        /// Include projects whose containers all stopped.
        #[arg(short, long)]
        all: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
}

/// `--format` of listings.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    /// Aligned columns.
    Table,
    /// A JSON array.
    Json,
}

/// Runs one of the commands.
pub fn run_service_command(
    project: &ProjectArgs,
    host: &HostArgs,
    command: &ServiceCommand,
) -> anyhow::Result<ExitCode> {
    if let ServiceCommand::Ls { all, format } = command {
        return list_projects(host, *all, *format);
    }
    let session = Session::open(project, host, false, Vec::new())?;
    let runtime = session.backend.runtime();
    match command {
        ServiceCommand::Ps {
            all,
            format,
            quiet,
            services,
        } => ps(&session, services, *all, *format, *quiet)?,
        ServiceCommand::Logs {
            follow,
            tail,
            since,
            timestamps,
            no_log_prefix,
            services,
        } => {
            let query = LogQuery {
                tail: match tail.as_str() {
                    "all" => None,
                    n => Some(n.parse().with_context(|| format!("invalid --tail {n:?}"))?),
                },
                since: since
                    .as_ref()
                    .map(|t| {
                        logs::parse_since(t, SystemTime::now())
                            .with_context(|| format!("invalid time {t:?}"))
                    })
                    .transpose()?,
                until: None,
                timestamps: *timestamps,
            };
            let containers = containers(&session, services)?;
            stream_logs(&session, &containers, &query, *follow, !*no_log_prefix)?;
        }
        ServiceCommand::Exec { index, exec } => {
            let name = replica_name(&session, &exec.name, *index)?;
            let args = ExecArgs {
                name,
                ..exec.clone()
            };
            return container::exec(runtime, &args);
        }
        ServiceCommand::Start { services } => each(&session, services, |c| {
            if !matches!(c.state.status, Status::Running | Status::Restarting) {
                runtime.start(&c.record.id)?;
            }
            Ok(())
        })?,
        ServiceCommand::Stop { timeout, services } => each(&session, services, |c| {
            Ok(runtime.stop(&c.record.id, timeout.map(Duration::from_secs))?)
        })?,
        ServiceCommand::Restart { timeout, services } => each(&session, services, |c| {
            runtime.stop(&c.record.id, timeout.map(Duration::from_secs))?;
            runtime.start(&c.record.id)?;
            Ok(())
        })?,
        ServiceCommand::Kill { signal, services } => {
            let signal = rcompose_runtime::spec::parse_signal(signal)?;
            each(&session, services, |c| {
                if matches!(c.state.status, Status::Running | Status::Paused) {
                    runtime.kill(&c.record.id, signal)?;
                }
                Ok(())
            })?;
        }
        ServiceCommand::Rm {
            stop,
            volumes,
            services,
        } => each(&session, services, |c| {
            if c.state.status.is_live() {
                if !*stop {
                    bail!("container {} is running (use --stop)", c.record.id);
                }
                runtime.stop(&c.record.id, None)?;
            }
            Ok(session.backend.remove_container(&c.record.id, *volumes)?)
        })?,
        ServiceCommand::Pull {
            insecure_registries,
            services,
        } => {
            let session = Session::open(project, host, true, insecure_registries.clone())?;
            let desired = session.desired()?;
            for svc in &desired.services {
                if services.is_empty() || services.contains(&svc.name) {
                    let digest = session.backend.pull_image(&svc.image)?;
                    println!("{} {} {digest}", svc.name, svc.image);
                }
            }
        }
        ServiceCommand::Images => {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<30} {:<20} {:<40} IMAGE ID",
                "CONTAINER", "SERVICE", "IMAGE"
            )?;
            for c in containers(&session, &[])? {
                let service = c.record.config.labels.get(LABEL_SERVICE).cloned();
                let id = c.record.image.id.trim_start_matches("sha256:");
                writeln!(
                    out,
                    "{:<30} {:<20} {:<40} {}",
                    c.record.id,
                    service.unwrap_or_default(),
                    c.record.image.reference,
                    &id[..id.len().min(12)]
                )?;
            }
        }
        ServiceCommand::Port {
            index,
            protocol,
            service,
            port,
        } => {
            let name = replica_name(&session, service, *index)?;
            let net = host.networks()?;
            for e in net.endpoints_of_container(&name)? {
                for p in &e.ports {
                    let inside = p.container_port..p.container_port + p.count;
                    if p.protocol.as_str() == protocol && inside.contains(port) {
                        let host_port = p.host_port + (port - p.container_port);
                        let ip = p.host_ip.map_or("0.0.0.0".to_string(), |ip| ip.to_string());
                        println!("{ip}:{host_port}");
                        return Ok(ExitCode::SUCCESS);
                    }
                }
            }
            bail!("no port {port}/{protocol} published for {name}");
        }
        ServiceCommand::Pause { services } => each(&session, services, |c| {
            if c.state.status == Status::Running {
                runtime.pause(&c.record.id)?;
            }
            Ok(())
        })?,
        ServiceCommand::Unpause { services } => each(&session, services, |c| {
            if c.state.status == Status::Paused {
                runtime.unpause(&c.record.id)?;
            }
            Ok(())
        })?,
        ServiceCommand::Top { services } => {
            for c in containers(&session, services)? {
                if matches!(c.state.status, Status::Running | Status::Paused) {
                    let top = runtime.top(&c.record.id)?;
                    println!("{}\n{}", c.record.id, top.render());
                }
            }
        }
        ServiceCommand::Events { json, services } => {
            super::events::stream(&session, services, *json)?;
        }
        ServiceCommand::Ls { .. } => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The project's containers (of `services`, all when empty), by service and replica.
pub(super) fn containers(
    session: &Session,
    services: &[String],
) -> anyhow::Result<Vec<ContainerInfo>> {
    let mut out: Vec<ContainerInfo> = session
        .backend
        .runtime()
        .list()?
        .into_iter()
        .filter(|c| {
            let labels = &c.record.config.labels;
            labels.get(LABEL_PROJECT) == Some(&session.name)
                && (services.is_empty()
                    || labels
                        .get(LABEL_SERVICE)
                        .is_some_and(|s| services.contains(s)))
        })
        .collect();
    out.sort_by_key(|c| {
        let labels = &c.record.config.labels;
        (
            labels.get(LABEL_SERVICE).cloned().unwrap_or_default(),
            labels
                .get(LABEL_REPLICA)
                .and_then(|r| r.parse::<u32>().ok())
                .unwrap_or_default(),
        )
    });
    Ok(out)
}

fn replica_name(session: &Session, service: &str, index: u32) -> anyhow::Result<String> {
    containers(session, &[service.to_string()])?
        .into_iter()
        .find(|c| c.record.config.labels.get(LABEL_REPLICA) == Some(&index.to_string()))
        .map(|c| c.record.id)
        .with_context(|| format!("service {service} has no container {index}"))
}

fn each(
    session: &Session,
    services: &[String],
    mut action: impl FnMut(&ContainerInfo) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut failed = 0;
    for c in containers(session, services)? {
        match action(&c) {
            Ok(()) => println!("{}", c.record.id),
            Err(e) => {
                eprintln!("error: {}: {e:#}", c.record.id);
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} containers failed");
    }
    Ok(())
}

fn status_of(c: &ContainerInfo) -> (String, Option<String>) {
    let state = serde_json::to_value(c.state.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let health = c.state.health.as_ref().and_then(|h| {
        serde_json::to_value(h.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
    });
    (state, health)
}

fn ps(
    session: &Session,
    services: &[String],
    all: bool,
    format: ListFormat,
    quiet: bool,
) -> anyhow::Result<()> {
    let net = session.host.networks()?;
    let mut rows = Vec::new();
    for c in containers(session, services)? {
        let running = c.state.status.is_live();
        if !all && !running {
            continue;
        }
        let (state, health) = status_of(&c);
        let mut publishers = Vec::new();
        for e in net.endpoints_of_container(&c.record.id).unwrap_or_default() {
            for p in e.ports {
                publishers.push(serde_json::json!({
                    "URL": p.host_ip.map_or("0.0.0.0".to_string(), |ip| ip.to_string()),
                    "TargetPort": p.container_port,
                    "PublishedPort": p.host_port,
                    "Protocol": p.protocol.as_str(),
                }));
            }
        }
        let labels = &c.record.config.labels;
        rows.push(serde_json::json!({
            "Name": c.record.id,
            "Project": session.name,
            "Service": labels.get(LABEL_SERVICE),
            "Image": c.record.image.reference,
            "State": state,
            "Health": health.clone().unwrap_or_default(),
            "ExitCode": c.state.exit_code.unwrap_or(0),
            "Status": match (&health, c.state.status) {
                (_, Status::Exited) => format!("exited ({})", c.state.exit_code.unwrap_or(0)),
                (Some(h), _) => format!("{state} ({h})"),
                (None, _) => state.clone(),
            },
            "Publishers": publishers,
        }));
    }
    let mut out = std::io::stdout().lock();
    if quiet {
        for r in &rows {
            writeln!(out, "{}", r["Name"].as_str().unwrap_or_default())?;
        }
        return Ok(());
    }
    if format == ListFormat::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<28} {:<36} {:<14} {:<22} PORTS",
        "NAME", "IMAGE", "SERVICE", "STATUS"
    )?;
    for r in &rows {
        let ports: Vec<String> = r["Publishers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                format!(
                    "{}:{}->{}/{}",
                    p["URL"].as_str().unwrap_or_default(),
                    p["PublishedPort"],
                    p["TargetPort"],
                    p["Protocol"].as_str().unwrap_or_default()
                )
            })
            .collect();
        writeln!(
            out,
            "{:<28} {:<36} {:<14} {:<22} {}",
            r["Name"].as_str().unwrap_or_default(),
            r["Image"].as_str().unwrap_or_default(),
            r["Service"].as_str().unwrap_or_default(),
            r["Status"].as_str().unwrap_or_default(),
            ports.join(", ")
        )?;
    }
    Ok(())
}

/// Prints the logs of `containers`, each line prefixed with its container's
/// name; with `follow`, keeps printing until every container stopped (or
/// Ctrl-C, when `stop_on_interrupt` is set by an attached `up`).
fn stream_logs(
    session: &Session,
    containers: &[ContainerInfo],
    query: &LogQuery,
    follow: bool,
    prefix: bool,
) -> anyhow::Result<()> {
    let runtime = session.backend.runtime();
    let width = containers
        .iter()
        .map(|c| c.record.id.len())
        .max()
        .unwrap_or(0);
    let colours = ["36", "33", "32", "35", "34", "96", "93", "92"];
    let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let prefixes: Vec<String> = containers
        .iter()
        .enumerate()
        .map(|(i, c)| match (prefix, tty) {
            (false, _) => String::new(),
            (true, false) => format!("{:<width$} | ", c.record.id),
            (true, true) => format!(
                "\x1b[{}m{:<width$} |\x1b[0m ",
                colours[i % colours.len()],
                c.record.id
            ),
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if !follow {
        let mut all = Vec::new();
        for (i, c) in containers.iter().enumerate() {
            for entry in logs::read_logs(&runtime.log_dir(&c.record.id), query)? {
                all.push((entry.time, i, entry));
            }
        }
        all.sort_by_key(|(time, i, _)| (*time, *i));
        for (_, i, entry) in all {
            write!(
                out,
                "{}{}",
                prefixes[i],
                logs::render(&entry, query.timestamps)
            )?;
        }
        return Ok(());
    }
    let mut followers = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let (entries, follower) = logs::follow(&runtime.log_dir(&c.record.id), query)?;
        for entry in entries {
            write!(
                out,
                "{}{}",
                prefixes[i],
                logs::render(&entry, query.timestamps)
            )?;
        }
        followers.push(follower);
    }
    out.flush()?;
    loop {
        for (i, follower) in followers.iter_mut().enumerate() {
            for entry in follower.poll_new()? {
                write!(
                    out,
                    "{}{}",
                    prefixes[i],
                    logs::render(&entry, query.timestamps)
                )?;
            }
        }
        out.flush()?;
        if INTERRUPTED.load(Ordering::SeqCst) {
            return Ok(());
        }
        let live = containers.iter().any(|c| {
            runtime
                .inspect(&c.record.id)
                .is_ok_and(|i| i.state.status.is_live())
        });
        if !live {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// `up` without `-d`: streams the logs of `services` until they all stop;
/// Ctrl-C stops the project's containers (as `docker compose up` does).
pub fn attach(session: &Session, services: &[String], stop: bool) -> anyhow::Result<ExitCode> {
    // The handler is in place before the first log line is shown, so that a
    // Ctrl-C that follows it is never the default, fatal one.
    let (ready, installed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = crate::host::block_on(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let mut interrupt = signal(SignalKind::interrupt());
            let _ = ready.send(interrupt.is_ok());
            if let Ok(interrupt) = interrupt.as_mut() {
                interrupt.recv().await;
                INTERRUPTED.store(true, Ordering::SeqCst);
            }
        });
    });
    if !installed.recv().unwrap_or(false) {
        bail!("cannot handle Ctrl-C");
    }
    let query = LogQuery {
        tail: None,
        since: None,
        until: None,
        timestamps: false,
    };
    let list = containers(session, services)?;
    stream_logs(session, &list, &query, true, true)?;
    if stop && INTERRUPTED.load(Ordering::SeqCst) {
        eprintln!("stopping {} containers…", list.len());
        for c in list.iter().rev() {
            if let Err(e) = session.backend.runtime().stop(&c.record.id, None) {
                eprintln!("error: stop {}: {e:#}", c.record.id);
            }
        }
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

fn list_projects(host: &HostArgs, all: bool, format: ListFormat) -> anyhow::Result<ExitCode> {
    let runtime = host.runtime()?;
    let mut projects: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for c in runtime.list()? {
        if let Some(p) = c.record.config.labels.get(LABEL_PROJECT) {
            let (state, _) = status_of(&c);
            *projects
                .entry(p.clone())
                .or_default()
                .entry(state)
                .or_default() += 1;
        }
    }
    let rows: Vec<serde_json::Value> = projects
        .into_iter()
        .filter(|(_, states)| all || states.contains_key("running"))
        .map(|(name, states)| {
            let status: Vec<String> = states.iter().map(|(s, n)| format!("{s}({n})")).collect();
            serde_json::json!({ "Name": name, "Status": status.join(", ") })
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if format == ListFormat::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
    } else {
        writeln!(out, "{:<30} STATUS", "NAME")?;
        for r in rows {
            writeln!(
                out,
                "{:<30} {}",
                r["Name"].as_str().unwrap_or_default(),
                r["Status"].as_str().unwrap_or_default()
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
