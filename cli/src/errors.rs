//! How a failed command reports its error: `error: ...` with every cause for
//! people, or one JSON object on stderr when the command line asked for JSON
//! output (`--format json` or `--progress json`), so that a script reading
//! JSON gets JSON on failure too.

use std::io::Write as _;
use std::process::ExitCode;

use clap::{ArgMatches, Command};

use crate::stack::InvalidStack;

/// The options whose value `json` makes the output machine-readable.
const JSON_OPTIONS: [&str; 2] = ["format", "progress"];

/// How the error of a command is printed on stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ErrorStyle {
    /// `error: top message: cause: cause`.
    #[default]
    Text,
    /// `{"error": "top message", "causes": ["cause", ...]}` on one line.
    Json,
}

impl ErrorStyle {
    /// [`ErrorStyle::Json`] when `--format json` or `--progress json` was
    /// given to the command run or to any command above it in `matches`
    /// (parsed with `command`), else [`ErrorStyle::Text`].
    ///
    /// The parsed arguments are looked at rather than the raw command line,
    /// so that a `--format json` meant for a program run inside a container
    /// (`container exec NAME -- prog --format json`) does not count.
    pub fn of(command: &Command, matches: &ArgMatches) -> ErrorStyle {
        let mut command = command;
        let mut matches = matches;
        loop {
            if asks_for_json(command, matches) {
                return ErrorStyle::Json;
            }
            let Some((name, sub_matches)) = matches.subcommand() else {
                return ErrorStyle::Text;
            };
            let Some(sub_command) = command.find_subcommand(name) else {
                return ErrorStyle::Text;
            };
            command = sub_command;
            matches = sub_matches;
        }
    }
}

/// Whether one of `command`'s own options in [`JSON_OPTIONS`] has the value `json`.
fn asks_for_json(command: &Command, matches: &ArgMatches) -> bool {
    command
        .get_arguments()
        .filter(|arg| arg.get_long().is_some_and(|l| JSON_OPTIONS.contains(&l)))
        .filter_map(|arg| matches.try_get_raw(arg.get_id().as_str()).ok().flatten())
        .flatten()
        .any(|value| value.eq_ignore_ascii_case("json"))
}

/// The exit code of a command, printing its error (with every cause) in
/// `style`: 1 for any error, including a stack file that failed validation
/// (whose diagnostics come first, each with its file:line:col).
pub fn report(result: anyhow::Result<ExitCode>, style: ErrorStyle) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            let text = match style {
                ErrorStyle::Text => match e.downcast_ref::<InvalidStack>() {
                    Some(invalid) => format!("{}\nerror: {e:#}", invalid.0),
                    None => format!("error: {e:#}"),
                },
                ErrorStyle::Json => json_error(&e).to_string(),
            };
            // Nothing sensible is left to do when stderr itself is gone.
            let _ = writeln!(std::io::stderr().lock(), "{text}");
            ExitCode::from(1)
        }
    }
}

/// `{"error": "<top message>", "causes": ["<cause>", ...]}`, the causes
/// outermost first; for a stack file that did not load, also
/// `"diagnostics": [{"file", "line", "column", "path", "message", "hint"}, ...]`.
pub fn json_error(error: &anyhow::Error) -> serde_json::Value {
    let causes: Vec<String> = error.chain().skip(1).map(ToString::to_string).collect();
    let mut json = serde_json::json!({
        "error": error.to_string(),
        "causes": causes,
    });
    if let Some(invalid) = error.downcast_ref::<InvalidStack>() {
        json["diagnostics"] = invalid.0.to_json();
    }
    json
}

#[cfg(test)]
mod tests {
    use anyhow::Context as _;
    use clap::{Arg, Command};

    use super::*;

    fn command() -> Command {
        Command::new("tool")
            .arg(Arg::new("file").short('f').long("file").global(true))
            .subcommand(
                Command::new("plan").arg(Arg::new("format").long("format").default_value("text")),
            )
            .subcommand(Command::new("up").arg(Arg::new("progress").long("progress")))
            .subcommand(
                Command::new("image")
                    .subcommand(Command::new("ls").arg(Arg::new("output").long("format"))),
            )
            .subcommand(
                Command::new("exec").arg(
                    Arg::new("argv")
                        .num_args(1..)
                        .trailing_var_arg(true)
                        .allow_hyphen_values(true),
                ),
            )
    }

    fn style(args: &[&str]) -> ErrorStyle {
        let command = command();
        let matches = command
            .clone()
            .try_get_matches_from(std::iter::once("tool").chain(args.iter().copied()))
            .unwrap();
        ErrorStyle::of(&command, &matches)
    }

    #[test]
    fn json_is_asked_by_format_or_progress_at_any_depth() {
        assert_eq!(style(&["plan", "--format", "json"]), ErrorStyle::Json);
        assert_eq!(
            style(&["plan", "--format=json", "-f", "x"]),
            ErrorStyle::Json
        );
        assert_eq!(style(&["up", "--progress", "json"]), ErrorStyle::Json);
        assert_eq!(
            style(&["image", "ls", "--format", "json"]),
            ErrorStyle::Json
        );
    }

    #[test]
    fn other_values_and_trailing_arguments_keep_text() {
        assert_eq!(style(&["plan"]), ErrorStyle::Text);
        assert_eq!(style(&["plan", "--format", "markdown"]), ErrorStyle::Text);
        assert_eq!(style(&["up", "--progress", "plain"]), ErrorStyle::Text);
        assert_eq!(
            style(&["exec", "prog", "--format", "json"]),
            ErrorStyle::Text
        );
    }

    #[test]
    fn the_json_error_lists_the_causes_outermost_first() {
        let error = Err::<(), _>(std::io::Error::other("disk full"))
            .context("failed to write state")
            .context("failed to create container web")
            .unwrap_err();
        assert_eq!(
            json_error(&error),
            serde_json::json!({
                "error": "failed to create container web",
                "causes": ["failed to write state", "disk full"],
            })
        );
    }
}
