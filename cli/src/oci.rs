//! `rcompose oci …`: the OCI runtime command line (create, start, state,
//! kill, delete, run) on a plain bundle, with runc's usual flags, so external
//! tools and conformance suites can drive the built-in runtime.
//!
//! It parses its own arguments (runc takes `--root` before the command, which
//! would clash with rcompose's global `--root`). Call it before any thread is
//! started: it forks.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rcompose_runtime::oci::{CreateOptions, OciRuntime};

/// The OCI runtime interface of rcompose.
#[derive(Parser, Debug)]
#[command(name = "rcompose oci", about)]
struct OciCli {
    /// Directory holding container state.
    #[arg(long, default_value = "/run/rcompose/oci")]
    root: PathBuf,
    /// Log file (accepted for runc compatibility; logs go to stderr).
    #[arg(long)]
    log: Option<PathBuf>,
    /// Log format (accepted for runc compatibility).
    #[arg(long = "log-format")]
    log_format: Option<String>,
    /// Debug logging (accepted for runc compatibility).
    #[arg(long)]
    debug: bool,
    /// Use systemd for cgroups (not supported; accepted and ignored).
    #[arg(long = "systemd-cgroup")]
    systemd_cgroup: bool,
    #[command(subcommand)]
    command: OciCommand,
}

#[derive(Subcommand, Debug)]
enum OciCommand {
    /// Create a container from a bundle; its process waits for `start`.
    Create(CreateArgs),
    /// Start a created container's process.
    Start {
        /// Container id.
        id: String,
    },
    /// Print the state of a container as JSON.
    State {
        /// Container id.
        id: String,
    },
    /// Send a signal to a container's process.
    Kill {
        /// Send it to every process of the container.
        #[arg(short, long)]
        all: bool,
        /// Container id.
        id: String,
        /// Signal name or number.
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a stopped container.
    Delete {
        /// Kill and delete a running one too.
        #[arg(short, long)]
        force: bool,
        /// Container id.
        id: String,
    },
    /// Create, start, wait and delete a container; exits with its status.
    Run(CreateArgs),
}

#[derive(clap::Args, Debug)]
struct CreateArgs {
    /// Bundle directory (holds config.json).
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// File the container's pid is written to.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Unix socket that receives the terminal's master fd.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility.
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Accepted for runc compatibility.
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Accepted for runc compatibility.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: i32,
    /// Container id.
    id: String,
}

/// Runs `rcompose oci <args>`.
pub fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    let cli =
        OciCli::parse_from(std::iter::once("rcompose oci".to_string()).chain(args.iter().cloned()));
    let oci = OciRuntime::new(&cli.root);
    match cli.command {
        OciCommand::Create(create) => {
            let bundle = std::fs::canonicalize(&create.bundle)?;
            oci.create(&create.id, &bundle, options(&create))?;
        }
        OciCommand::Start { id } => oci.start(&id)?,
        OciCommand::State { id } => println!("{}", serde_json::to_string_pretty(&oci.state(&id)?)?),
        OciCommand::Kill { all, id, signal } => {
            oci.kill(&id, rcompose_runtime::spec::parse_signal(&signal)?, all)?;
        }
        OciCommand::Delete { force, id } => oci.delete(&id, force)?,
        OciCommand::Run(create) => return run_foreground(&oci, &create),
    }
    Ok(ExitCode::SUCCESS)
}

fn options(create: &CreateArgs) -> CreateOptions {
    CreateOptions {
        pid_file: create.pid_file.clone(),
        console_socket: create.console_socket.clone(),
        ..CreateOptions::default()
    }
}

fn run_foreground(oci: &OciRuntime, create: &CreateArgs) -> anyhow::Result<ExitCode> {
    let bundle = std::fs::canonicalize(&create.bundle)?;
    let pid = oci.create(&create.id, &bundle, options(create))?;
    if let Err(e) = oci.start(&create.id) {
        let _ = oci.delete(&create.id, true);
        return Err(e.into());
    }
    let code = crate::container::wait_exit_code(pid);
    oci.delete(&create.id, true)?;
    Ok(ExitCode::from(code))
}
