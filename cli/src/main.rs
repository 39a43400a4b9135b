//! The `rcompose` binary: argument parsing and the composition root.
//!
//! Each command lives in its own module; they share [`ProjectArgs`], the options
//! that say which stack files make the project (as in `docker compose`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod config;
mod schema;

/// Make this host match a Compose stack file.
#[derive(Parser, Debug)]
#[command(name = "rcompose", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    project: ProjectArgs,
    #[command(subcommand)]
    command: Command,
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
        })
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate the stack files and print the normalized project.
    Config(config::ConfigArgs),
    /// Print the JSON Schema of the stack file.
    Schema,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("RCOMPOSE_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Config(args) => config::run(&cli.project, args),
        Command::Schema => schema::run(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
