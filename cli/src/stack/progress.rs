//! What `up`, `apply` and `down` print while they work: one line per
//! operation as it finishes (coloured on a terminal), JSON lines for log
//! collectors, or nothing.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Mutex;
use std::time::Instant;

use clap::ValueEnum;
use rcompose_reconciler::Plan;
use rcompose_reconciler::apply::Event;

/// `--progress`.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProgressMode {
    /// `tty` on a terminal, else `plain`.
    #[default]
    Auto,
    /// Coloured lines.
    Tty,
    /// Plain lines.
    Plain,
    /// One JSON object per line.
    Json,
    /// Nothing but errors.
    Quiet,
}

/// Prints the events of one apply.
pub struct Progress<'a> {
    plan: &'a Plan,
    mode: ProgressMode,
    started: Instant,
    out: Mutex<std::io::Stderr>,
}

impl<'a> Progress<'a> {
    /// Progress of `plan` in `mode` (`auto` resolved against stderr).
    pub fn new(plan: &'a Plan, mode: ProgressMode) -> Progress<'a> {
        let mode = match mode {
            ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Tty,
            ProgressMode::Auto => ProgressMode::Plain,
            other => other,
        };
        Progress {
            plan,
            mode,
            started: Instant::now(),
            out: Mutex::new(std::io::stderr()),
        }
    }

    /// Prints one event.
    pub fn event(&self, event: &Event) {
        let mut out = match self.out.lock() {
            Ok(out) => out,
            Err(poisoned) => poisoned.into_inner(),
        };
        let elapsed = self.started.elapsed().as_secs_f64();
        let describe = |op: usize| {
            self.plan
                .ops
                .get(op)
                .map(|o| o.describe())
                .unwrap_or_default()
        };
        let _ = match (self.mode, event) {
            (ProgressMode::Quiet, _) => Ok(()),
            (ProgressMode::Json, e) => {
                let mut value = serde_json::to_value(e).unwrap_or_default();
                if let (Some(obj), Some(op)) = (value.as_object_mut(), op_of(e)) {
                    obj.insert("operation".into(), describe(op).into());
                    if let Some(o) = self.plan.ops.get(op) {
                        obj.insert("id".into(), o.id.clone().into());
                    }
                    obj.insert("elapsed".into(), elapsed.into());
                }
                writeln!(out, "{value}")
            }
            (_, Event::Started { .. }) => Ok(()),
            (mode, Event::Finished { op }) => {
                let tick = paint(mode, "32", "✔");
                writeln!(out, " {tick} {} ({elapsed:.1}s)", describe(*op))
            }
            (mode, Event::Failed { op, error }) => {
                let cross = paint(mode, "31", "✘");
                writeln!(out, " {cross} {}: {error}", describe(*op))
            }
            (mode, Event::Warning { op, message }) => {
                let bang = paint(mode, "33", "!");
                writeln!(out, " {bang} {}: {message}", describe(*op))
            }
        };
    }
}

fn op_of(event: &Event) -> Option<usize> {
    match event {
        Event::Started { op }
        | Event::Finished { op }
        | Event::Failed { op, .. }
        | Event::Warning { op, .. } => Some(*op),
    }
}

fn paint(mode: ProgressMode, colour: &str, text: &str) -> String {
    if mode == ProgressMode::Tty {
        format!("\x1b[{colour}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}
