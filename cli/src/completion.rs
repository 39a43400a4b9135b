//! `rcompose completion SHELL` and `rcompose man [--dir DIR]`: the shell
//! completion script and the man pages, both generated from the command-line
//! definition so they never fall out of step with it.
//!
//! The hidden entry points (`__monitor`, `__dns`) are dispatched before the
//! command line is parsed and are not part of the definition, so neither the
//! scripts nor the pages mention them; a sub-command marked hidden is left out
//! of the pages as well.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Command};
use clap_complete::Shell;

/// The name the scripts complete and the pages document.
const BIN_NAME: &str = "rcompose";

/// Options of `completion`.
#[derive(Args, Debug)]
pub struct CompletionArgs {
    /// Shell to print the completion script of.
    #[arg(value_enum)]
    shell: Shell,
}

/// Options of `man`.
#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write rcompose.1 and one page per sub-command (rcompose-up.1, ...)
    /// into this directory (created if missing) instead of printing
    /// rcompose.1 on stdout.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// `rcompose completion SHELL`: prints the script on stdout.
pub fn completion(mut command: Command, args: &CompletionArgs) -> anyhow::Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, BIN_NAME, &mut script);
    write_stdout(&script)?;
    Ok(ExitCode::SUCCESS)
}

/// `rcompose man [--dir DIR]`.
pub fn man(command: Command, args: &ManArgs) -> anyhow::Result<ExitCode> {
    // `help` is a sub-command of clap's making, documented by `--help` itself.
    let command = command.disable_help_subcommand(true);
    match &args.dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .context("failed to render the man page")?;
            write_stdout(&page)?;
        }
        Some(dir) => write_pages(command, dir)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the page of `command` and of every visible sub-command, at any
/// depth, into `dir`.
fn write_pages(command: Command, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    clap_mangen::generate_to(command, dir)
        .with_context(|| format!("failed to write the man pages into {}", dir.display()))
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .context("failed to write to stdout")
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn every_shell_gets_a_script_naming_the_commands() {
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::Elvish,
            Shell::PowerShell,
        ] {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut crate::Cli::command(), BIN_NAME, &mut script);
            let script = String::from_utf8(script).unwrap();
            assert!(script.contains("plan"), "{shell}: {script}");
        }
    }

    #[test]
    fn man_pages_cover_nested_commands_without_help_pages() {
        let dir = tempfile::tempdir().unwrap();
        write_pages(
            crate::Cli::command().disable_help_subcommand(true),
            dir.path(),
        )
        .unwrap();
        for page in ["rcompose.1", "rcompose-up.1", "rcompose-image-pull.1"] {
            assert!(dir.path().join(page).is_file(), "{page} missing");
        }
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n.ends_with("-help.1")),
            "help pages: {names:?}"
        );
    }
}
