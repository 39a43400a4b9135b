//! The control loop of `rcompose watch`: wait for something that may have
//! moved the host away from the stack file, then run one reconcile pass
//! (load → observe → plan → apply, done by a [`Reconciler`]), and again.
//!
//! What starts a pass ([`Trigger`]): the start of the loop, a change of an
//! input file, a container event, the periodic resync (drift that no event
//! reported), and the retry of a failed pass. Triggers are debounced: after
//! the first one the loop keeps collecting until [`ControllerOptions::debounce`]
//! passes without a new one — but never longer than [`MAX_DELAY_FACTOR`] ×
//! debounce after the first, so a constant stream of changes still makes
//! progress — and hands them all to one pass as a [`Triggered`].
//!
//! Invariants:
//! - exactly one pass runs at a time; triggers arriving during a pass are
//!   collected (and debounced) for the next one;
//! - the first pass runs at once, with [`Trigger::Start`];
//! - a [`PassError::Failed`] pass is retried ([`Trigger::Requeue`]) after
//!   `backoff_base · 2^k`, capped at `backoff_cap`, where `k` counts the
//!   failures since the last success; while a retry is pending the resync
//!   is not scheduled (the retry is one);
//! - a [`PassError::Invalid`] pass (the stack file is broken; the
//!   reconciler left the host as it was) is not retried: the next file
//!   change will bring a new file. The resync still runs;
//! - the resync is due [`ControllerOptions::resync`] after the end of the
//!   last pass, whatever triggered it; a timer that fires while triggers
//!   are being debounced joins their pass instead of running one of its own;
//! - closing the trigger channel or completing the shutdown future ends the
//!   loop once the pass in progress (if any) has finished and been logged;
//!   triggers still being debounced are dropped.
//!
//! Time is `tokio::time`, so tests run on paused time. The loop does no
//! blocking work itself; a reconciler that blocks (apply does) should run
//! its work with `spawn_blocking` or `block_in_place` so the loop keeps
//! collecting triggers.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::Receiver;
use tokio::time::{Instant, sleep_until};
use tracing::Instrument;

mod log;

pub use log::{PassLog, PassResult};

/// The longest a pass is delayed by debouncing, in debounce periods from
/// the first trigger of the window.
pub const MAX_DELAY_FACTOR: u32 = 10;

/// Why a pass runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The loop started.
    Start,
    /// Input files changed (stack files, `.env`, `env_file`s, configs).
    Files(Vec<PathBuf>),
    /// A container of the project changed state.
    Container {
        /// Container name (`shop-web-1`).
        name: String,
        /// What happened (`died`, `unhealthy`, `removed`).
        what: String,
    },
    /// The periodic resync.
    Resync,
    /// The retry of a failed pass.
    Requeue,
}

impl fmt::Display for Trigger {
    /// `start`, `files: compose.yaml, .env`, `container: shop-web-1 died`,
    /// `resync`, `requeue`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Start => f.write_str("start"),
            Self::Files(paths) => {
                let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                write!(f, "files: {}", names.join(", "))
            }
            Self::Container { name, what } => write!(f, "container: {name} {what}"),
            Self::Resync => f.write_str("resync"),
            Self::Requeue => f.write_str("requeue"),
        }
    }
}

/// The triggers of one pass, merged: one [`Trigger::Files`] with every
/// changed file, each other trigger once, in order of first arrival.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Triggered {
    /// The merged triggers.
    pub triggers: Vec<Trigger>,
}

impl Triggered {
    /// Adds `trigger`, merging it with those already there.
    pub fn push(&mut self, trigger: Trigger) {
        if let Trigger::Files(paths) = &trigger {
            let merged = self.triggers.iter_mut().find_map(|t| match t {
                Trigger::Files(known) => Some(known),
                _ => None,
            });
            if let Some(known) = merged {
                for path in paths {
                    if !known.contains(path) {
                        known.push(path.clone());
                    }
                }
                return;
            }
        }
        if !self.triggers.contains(&trigger) {
            self.triggers.push(trigger);
        }
    }

    /// Whether nothing was collected.
    pub fn is_empty(&self) -> bool {
        self.triggers.is_empty()
    }

    /// Whether `trigger` is among the triggers (for [`Trigger::Files`]: the
    /// same list of files).
    pub fn contains(&self, trigger: &Trigger) -> bool {
        self.triggers.contains(trigger)
    }

    /// Every changed file.
    pub fn files(&self) -> Vec<&Path> {
        self.triggers
            .iter()
            .flat_map(|t| match t {
                Trigger::Files(paths) => paths.as_slice(),
                _ => &[],
            })
            .map(PathBuf::as_path)
            .collect()
    }

    /// One line for people: `files: compose.yaml; container: shop-web-1 died`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self.triggers.iter().map(Trigger::to_string).collect();
        parts.join("; ")
    }
}

impl FromIterator<Trigger> for Triggered {
    fn from_iter<I: IntoIterator<Item = Trigger>>(iter: I) -> Self {
        let mut triggered = Self::default();
        for trigger in iter {
            triggered.push(trigger);
        }
        triggered
    }
}

/// Timing of the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerOptions {
    /// Quiet time after the last trigger before a pass runs.
    pub debounce: Duration,
    /// Time after a pass before the next resync (`None`: never).
    pub resync: Option<Duration>,
    /// Delay before the first retry of a failed pass.
    pub backoff_base: Duration,
    /// Longest delay between two retries.
    pub backoff_cap: Duration,
}

impl Default for ControllerOptions {
    /// 500 ms debounce, 30 s resync, retries after 1 s doubling up to 60 s.
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(500),
            resync: Some(Duration::from_secs(30)),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
        }
    }
}

impl ControllerOptions {
    /// Delay before retry number `failures` (1 for the first retry):
    /// `backoff_base · 2^(failures-1)`, at most `backoff_cap`.
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.backoff_base
            .saturating_mul(factor)
            .min(self.backoff_cap)
    }
}

/// One reconcile pass: what the controller drives.
pub trait Reconciler {
    /// Brings the host to the stack file once. Returns
    /// [`PassError::Invalid`] without touching the host when the stack
    /// file cannot be loaded.
    fn pass(
        &mut self,
        triggered: &Triggered,
    ) -> impl Future<Output = Result<PassReport, PassError>> + Send;
}

/// What a successful pass did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PassReport {
    /// One line for people (`3 operations applied`, `no changes`).
    pub summary: String,
    /// Whether the host was changed.
    pub changed: bool,
    /// Resources found away from the stack file (and brought back).
    pub drift: Vec<String>,
}

/// Why a pass did not converge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PassError {
    /// The stack file is broken; the host was left as it was. Not retried
    /// until the next trigger.
    #[error("{0}")]
    Invalid(String),
    /// Observing or applying failed. Retried with backoff.
    #[error("{0}")]
    Failed(String),
}

/// Runs the control loop (see the module comment) until `triggers` is
/// closed or `shutdown` completes, calling `on_pass` after each pass.
///
/// ```
/// use rcompose_reconciler::controller::{
///     ControllerOptions, PassError, PassReport, Reconciler, Triggered, run,
/// };
///
/// struct Up;
///
/// impl Reconciler for Up {
///     async fn pass(&mut self, triggered: &Triggered) -> Result<PassReport, PassError> {
///         let summary = format!("converged ({})", triggered.summary());
///         Ok(PassReport { summary, ..PassReport::default() })
///     }
/// }
///
/// let runtime = tokio::runtime::Builder::new_current_thread()
///     .enable_time()
///     .build()
///     .unwrap();
/// runtime.block_on(async {
///     // Nothing sends triggers: the first pass runs, then the closed
///     // channel ends the loop.
///     let (tx, rx) = tokio::sync::mpsc::channel(16);
///     drop(tx);
///     let mut lines = Vec::new();
///     let mut on_pass = |log: &rcompose_reconciler::controller::PassLog| {
///         lines.push(log.render_text())
///     };
///     let options = ControllerOptions::default();
///     run(&mut Up, rx, &options, &mut on_pass, std::future::pending()).await;
///     assert_eq!(lines.len(), 1);
///     assert!(lines[0].starts_with("pass 1 ok in "));
///     assert!(lines[0].ends_with("(start): converged (start)"));
/// });
/// ```
pub async fn run<R: Reconciler>(
    reconciler: &mut R,
    mut triggers: Receiver<Trigger>,
    options: &ControllerOptions,
    on_pass: &mut dyn FnMut(&PassLog),
    shutdown: impl Future<Output = ()>,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut state = Loop::new(options);
    state.pending.push(Trigger::Start);
    loop {
        let log = state
            .pass(reconciler, &mut triggers, shutdown.as_mut())
            .await;
        on_pass(&log);
        if state.stopping || !state.open {
            break;
        }
        if !state.wait(&mut triggers, shutdown.as_mut()).await {
            break;
        }
    }
}

/// When the triggers being debounced arrived.
#[derive(Debug, Clone, Copy)]
struct Window {
    first: Instant,
    last: Instant,
}

/// The state of the loop between passes.
struct Loop<'a> {
    options: &'a ControllerOptions,
    /// Triggers for the next pass.
    pending: Triggered,
    /// Set while `pending` waits for the debounce.
    window: Option<Window>,
    requeue_at: Option<Instant>,
    resync_at: Option<Instant>,
    /// Failed passes since the last success.
    failures: u32,
    /// Number of the last pass.
    number: u64,
    /// The shutdown future completed.
    stopping: bool,
    /// The trigger channel is open.
    open: bool,
}

impl<'a> Loop<'a> {
    fn new(options: &'a ControllerOptions) -> Self {
        Self {
            options,
            pending: Triggered::default(),
            window: None,
            requeue_at: None,
            resync_at: None,
            failures: 0,
            number: 0,
            stopping: false,
            open: true,
        }
    }

    /// Runs one pass with the pending triggers, collecting new ones
    /// meanwhile, and schedules the retry or resync that follows it.
    async fn pass<R, F>(
        &mut self,
        reconciler: &mut R,
        triggers: &mut Receiver<Trigger>,
        mut shutdown: Pin<&mut F>,
    ) -> PassLog
    where
        R: Reconciler,
        F: Future<Output = ()>,
    {
        let triggered = std::mem::take(&mut self.pending);
        self.window = None;
        self.number += 1;
        let span =
            tracing::info_span!("pass", number = self.number, trigger = %triggered.summary());
        let time = crate::history::rfc3339(SystemTime::now());
        let started = Instant::now();
        let result = {
            let mut work = std::pin::pin!(reconciler.pass(&triggered).instrument(span.clone()));
            loop {
                tokio::select! {
                    biased;
                    result = &mut work => break result,
                    () = &mut shutdown, if !self.stopping => self.stopping = true,
                    trigger = triggers.recv(), if self.open => self.received(trigger),
                }
            }
        };
        let next_retry = self.schedule(&result);
        let log = PassLog::new(
            self.number,
            time,
            triggered,
            result,
            started.elapsed(),
            next_retry,
        );
        span.in_scope(|| match log.result {
            PassResult::Ok => tracing::info!(message = %log.message, "pass converged"),
            _ => tracing::warn!(message = %log.message, result = ?log.result, "pass did not converge"),
        });
        log
    }

    /// Waits until the next pass is due; `false` when the loop must end.
    async fn wait<F: Future<Output = ()>>(
        &mut self,
        triggers: &mut Receiver<Trigger>,
        mut shutdown: Pin<&mut F>,
    ) -> bool {
        loop {
            let now = Instant::now();
            let due = self.window.map(|w| self.due(w));
            let (requeue, resync) = (self.requeue_at, self.resync_at);
            tokio::select! {
                biased;
                () = &mut shutdown, if !self.stopping => {
                    self.stopping = true;
                    return false;
                }
                () = sleep_until(due.unwrap_or(now)), if due.is_some() => return true,
                () = sleep_until(requeue.unwrap_or(now)), if requeue.is_some() => {
                    self.requeue_at = None;
                    if self.timer(Trigger::Requeue) {
                        return true;
                    }
                }
                () = sleep_until(resync.unwrap_or(now)), if resync.is_some() => {
                    self.resync_at = None;
                    if self.timer(Trigger::Resync) {
                        return true;
                    }
                }
                trigger = triggers.recv(), if self.open => {
                    self.received(trigger);
                    if !self.open {
                        return false;
                    }
                }
            }
        }
    }

    /// Collects a trigger from the channel (`None`: it closed).
    fn received(&mut self, trigger: Option<Trigger>) {
        let Some(trigger) = trigger else {
            self.open = false;
            return;
        };
        let now = Instant::now();
        self.pending.push(trigger);
        self.window = Some(match self.window {
            Some(w) => Window { last: now, ..w },
            None => Window {
                first: now,
                last: now,
            },
        });
    }

    /// Adds a timer's trigger; `true` when it should run a pass at once
    /// (no debounce window is open for it to join).
    fn timer(&mut self, trigger: Trigger) -> bool {
        self.pending.push(trigger);
        self.window.is_none()
    }

    /// When the pass of `window` is due.
    fn due(&self, window: Window) -> Instant {
        let debounce = self.options.debounce;
        (window.last + debounce).min(window.first + debounce * MAX_DELAY_FACTOR)
    }

    /// Schedules what follows a pass that ended now with `result`; returns
    /// the retry delay of a failed pass.
    fn schedule(&mut self, result: &Result<PassReport, PassError>) -> Option<Duration> {
        let now = Instant::now();
        self.requeue_at = None;
        self.resync_at = self.options.resync.map(|r| now + r);
        match result {
            Ok(_) => {
                self.failures = 0;
                None
            }
            Err(PassError::Invalid(_)) => None,
            Err(PassError::Failed(_)) => {
                self.failures = self.failures.saturating_add(1);
                let delay = self.options.backoff(self.failures);
                self.requeue_at = Some(now + delay);
                self.resync_at = None;
                Some(delay)
            }
        }
    }
}

#[cfg(test)]
mod tests;
