//! The `rcompose` binary: argument parsing and the composition root.
//!
//! Each command lives in its own module; they share [`ProjectArgs`], the options
//! that say which stack files make the project (as in `docker compose`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

use crate::errors::{ErrorStyle, report};

mod completion;
mod config;
mod container;
mod errors;
mod history;
mod host;
mod image;
mod image_load;
mod network;
mod oci;
mod schema;
mod stack;
mod sync;
mod volume;
mod watch;

/// Make this host match a Compose stack file.
#[derive(Parser, Debug)]
#[command(
    name = "rcompose",
    version,
    about = "Make this host match a Compose stack file",
    propagate_version = true
)]
struct Cli {
    /// Least severe log messages shown on stderr (RCOMPOSE_LOG, when set, wins).
    #[arg(long, global = true, value_enum, default_value_t = LogLevel::Warn)]
    log_level: LogLevel,
    #[command(flatten)]
    project: ProjectArgs,
    #[command(flatten)]
    host: host::HostArgs,
    #[command(subcommand)]
    command: Command,
}

/// The severity `--log-level` shows from.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
enum LogLevel {
    /// Failures only.
    Error,
    /// Failures and warnings.
    #[default]
    Warn,
    /// What is being done, step by step.
    Info,
    /// Details for debugging.
    Debug,
    /// Everything.
    Trace,
}

impl From<LogLevel> for LevelFilter {
    fn from(level: LogLevel) -> LevelFilter {
        match level {
            LogLevel::Error => LevelFilter::ERROR,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Trace => LevelFilter::TRACE,
        }
    }
}

/// Which files make the project, like `docker compose`'s global options.
#[derive(Args, Debug, Clone, Default)]
pub struct ProjectArgs {
    /// Stack file (repeatable; later files override earlier ones).
    #[arg(short = 'f', long = "file", global = true)]
    pub files: Vec<PathBuf>,
    /// Project name (default: `name:` in the file, else the directory name).
    #[arg(short = 'p', long = "project-name", global = true)]
    pub project_name: Option<String>,
    /// Directory relative paths resolve against (default: the first file's).
    #[arg(long, global = true)]
    pub project_directory: Option<PathBuf>,
    /// Env file for interpolation (repeatable; default: `.env` in the project directory).
    #[arg(long = "env-file", global = true)]
    pub env_files: Vec<PathBuf>,
    /// Profile to enable (repeatable; adds to COMPOSE_PROFILES).
    #[arg(long = "profile", global = true)]
    pub profiles: Vec<String>,
    /// How `up`, `apply`, `down` and `rollback` show progress (before the
    /// command, as Compose takes it, or after it).
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub progress: stack::ProgressMode,
}

impl ProjectArgs {
    /// Loader options from these arguments and the process environment.
    pub fn load_options(&self) -> anyhow::Result<rcompose_spec::LoadOptions> {
        Ok(rcompose_spec::LoadOptions {
            files: self.files.clone(),
            project_directory: self.project_directory.clone(),
            project_name: self.project_name.clone(),
            env_files: self.env_files.clone(),
            profiles: self.profiles.clone(),
            environment: std::env::vars().collect(),
            working_dir: std::env::current_dir()?,
            schema_cache: None,
        })
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create or update the project's networks, volumes and containers.
    Up(Box<stack::UpArgs>),
    /// Show what `up` would do, with the reason of every change.
    Plan(Box<stack::PlanArgs>),
    /// Apply a plan saved by `plan -o FILE`, refused if the host or files changed since.
    Apply(stack::ApplyArgs),
    /// Stop and remove the project's containers and networks (`-v`: volumes too).
    Down(stack::DownArgs),
    /// Keep the host equal to the stack file: re-apply on every change, heal drift.
    Watch(Box<watch::WatchArgs>),
    /// Keep the host equal to a stack file in a git repository (GitOps).
    Sync(Box<sync::SyncArgs>),
    /// List the revisions applied to the project.
    History(history::HistoryArgs),
    /// Plan and apply an earlier revision (`--dry-run`: only the plan).
    Rollback(history::RollbackArgs),
    #[command(flatten)]
    Service(stack::ServiceCommand),
    /// Validate the stack files and print the normalized project.
    Config(config::ConfigArgs),
    /// Print the JSON Schema of the stack file.
    Schema,
    /// Manage images: pull, ls, rm, prune, load, import.
    Image(image::ImageArgs),
    /// Manage single containers: run, create, start, stop, kill, rm, ls, logs, exec, stats.
    Container(Box<container::ContainerArgs>),
    /// Manage bridge networks: create, ls, inspect, rm, prune, connect, disconnect.
    Network(network::NetworkArgs),
    /// Manage volumes: create, ls, inspect, rm, prune.
    Volume(volume::VolumeArgs),
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell.
    Completion(completion::CompletionArgs),
    /// Print the man page, or write one page per command into a directory (--dir).
    Man(completion::ManArgs),
    /// The OCI runtime command line (create, start, state, kill, delete, run) on a bundle.
    #[command(disable_help_flag = true)]
    Oci {
        /// Arguments of the OCI runtime command line (see `rcompose oci --help`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    // A container monitor is this binary re-run with a hidden first argument;
    // it must start before anything else (it forks, so no threads yet).
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(rcompose_runtime::monitor::MONITOR_ARG) {
        let code = rcompose_runtime::monitor::main(&args[2..]);
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    // A monitor's healthcheck probe is exec'd into its container from here.
    if args.get(1).map(String::as_str) == Some(rcompose_runtime::probe::PROBE_ARG) {
        let code = rcompose_runtime::probe::helper_main(&args[2..]);
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    // Where `rcompose-monitor` is missing, a started run is watched here.
    if args.get(1).map(String::as_str) == Some(rcompose_runtime::monitor::SUPERVISE_ARG) {
        let code = rcompose_runtime::monitor::supervise_main(&args[2..]);
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    // A network's DNS server is this binary too, detached by `network create`.
    // It and `oci` log errors only unless RCOMPOSE_LOG says otherwise.
    if args.get(1).map(String::as_str) == Some(rcompose_netctl::dns::DAEMON_SUBCOMMAND) {
        init_tracing(LevelFilter::ERROR);
        return report(dns_daemon(&args[2..]), ErrorStyle::Text);
    }
    // `rcompose oci` takes runc's flags (its own `--root` among them), so it
    // parses its arguments itself, before the global options could claim them.
    if args.get(1).map(String::as_str) == Some("oci") {
        init_tracing(LevelFilter::ERROR);
        return report(oci::run(&args[2..]), ErrorStyle::Text);
    }
    // Parse before logging starts, so that `--log-level` sets the filter;
    // keep the matches to tell whether errors should be JSON.
    let command = Cli::command();
    let matches = command.clone().get_matches();
    let cli =
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut command.clone()).exit());
    let style = ErrorStyle::of(&command, &matches);
    init_tracing(cli.log_level.into());
    let result = match &cli.command {
        Command::Up(args) => stack::up(&cli.project, &cli.host, args),
        Command::Plan(args) => stack::plan(&cli.project, &cli.host, args),
        Command::Apply(args) => stack::apply_file(&cli.project, &cli.host, args),
        Command::Down(args) => stack::down(&cli.project, &cli.host, args),
        Command::Watch(args) => watch::watch(&cli.project, &cli.host, args),
        Command::Sync(args) => sync::sync(&cli.project, &cli.host, args),
        Command::History(args) => history::history(&cli.project, &cli.host, args),
        Command::Rollback(args) => history::rollback(&cli.project, &cli.host, args),
        Command::Service(command) => stack::run_service_command(&cli.project, &cli.host, command),
        Command::Config(args) => config::run(&cli.project, args),
        Command::Schema => schema::run(),
        Command::Image(args) => image::run(&cli.host, args),
        Command::Container(args) => container::run(&cli.host, args),
        Command::Network(args) => network::run(&cli.host, args),
        Command::Volume(args) => volume::run(&cli.host, args),
        Command::Completion(args) => completion::completion(Cli::command(), args),
        Command::Man(args) => completion::man(Cli::command(), args),
        Command::Oci { args } => oci::run(args),
    };
    report(result, style)
}

/// `KEY=VALUE` arguments (`--label`, `--opt`) as a map.
pub fn key_values(pairs: &[String]) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => anyhow::bail!("expected KEY=VALUE, got {pair:?}"),
        })
        .collect()
}

fn dns_daemon(args: &[String]) -> anyhow::Result<ExitCode> {
    let config = rcompose_netctl::dns::DnsDaemonArgs::from_args(args.iter().map(Into::into))?;
    rcompose_netctl::dns::serve(&config)?;
    Ok(ExitCode::SUCCESS)
}

/// Logs to stderr: the directives of RCOMPOSE_LOG when it holds any, else
/// everything at `level` and above.
fn init_tracing(level: LevelFilter) {
    let env = std::env::var("RCOMPOSE_LOG").ok();
    tracing_subscriber::fmt()
        .with_env_filter(log_filter(level, env.as_deref()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// The log filter: the directives of `env` (RCOMPOSE_LOG's value; invalid
/// ones are skipped with a message), or `level` when it holds none. At
/// `warn` and below, the container library's own warnings (cgroup
/// controllers this kernel lacks, say) are left out: they are not the
/// user's concern.
fn log_filter(level: LevelFilter, env: Option<&str>) -> EnvFilter {
    let directives = match env {
        Some(e) if !e.is_empty() => e.to_string(),
        _ if level <= LevelFilter::WARN => format!("{level},libcgroups=error,libcontainer=error"),
        _ => String::new(),
    };
    EnvFilter::builder()
        .with_default_directive(level.into())
        .parse_lossy(directives)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;
    use tracing_subscriber::filter::LevelFilter;

    use super::{LogLevel, log_filter};

    #[test]
    fn the_log_level_applies_unless_rcompose_log_has_directives() {
        let hint =
            |level: LogLevel, env: Option<&str>| log_filter(level.into(), env).max_level_hint();
        assert_eq!(hint(LogLevel::default(), None), Some(LevelFilter::WARN));
        assert_eq!(hint(LogLevel::Debug, None), Some(LevelFilter::DEBUG));
        assert_eq!(hint(LogLevel::Debug, Some("")), Some(LevelFilter::DEBUG));
        assert_eq!(
            hint(LogLevel::Debug, Some("error")),
            Some(LevelFilter::ERROR)
        );
        assert_eq!(
            hint(LogLevel::Error, Some("trace")),
            Some(LevelFilter::TRACE)
        );
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        // Catches clashing flags (a sub-command's `-f` against the global `--file`).
        super::Cli::command().debug_assert();
    }
}
