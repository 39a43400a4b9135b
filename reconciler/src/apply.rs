//! The executor: runs the operations of a [`Plan`] against the backends,
//! in parallel where the DAG allows, and reports what it did.
//!
//! Invariants: an operation starts only after every operation it depends
//! on succeeded; at most [`ApplyOptions::parallel`] operations run at once;
//! after the first failure nothing new starts, the running operations
//! finish, and the [`Report`] says what was done, what failed and what was
//! not run. An object already gone counts as removed. Events are emitted
//! in a causal order: an operation's `finished` comes before any
//! `started` of an operation that depends on it.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backend::{
    BackendError, ContainerBackend, ContainerSpec, ImageBackend, NetworkBackend, VolumeBackend,
};
use crate::desired::Condition;
use crate::plan::{Action, Op, Plan};

mod wait;

pub use wait::{WaitError, wait_ready};

/// Operations run at once when [`ApplyOptions::parallel`] is 0, and the
/// commands' default. Most of an operation's time is spent waiting (for a
/// container's process to die, the kernel to tear down a veth, a monitor to
/// report), so more operations than cores overlap well: on 2 cores a
/// `down -v` of 20 services took 0.32–0.40 s at 4, 0.24–0.27 s at 16, and
/// no less at 32; a cold `up` is CPU-bound and about the same at each.
pub const DEFAULT_PARALLEL: usize = 16;

/// How a plan is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Most operations run at once (0: [`DEFAULT_PARALLEL`]).
    pub parallel: usize,
    /// Time a stopped container gets before it is killed (`None`: the
    /// backend's default).
    pub stop_timeout: Option<Duration>,
    /// Time between two looks at a container awaited.
    pub poll: Duration,
    /// Bound on each wait for a dependency (`None`: none).
    pub wait_timeout: Option<Duration>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            parallel: DEFAULT_PARALLEL,
            stop_timeout: None,
            poll: Duration::from_millis(200),
            wait_timeout: None,
        }
    }
}

/// Progress of an apply, for a progress display or JSON lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Operation `op` (an index into the plan) started.
    Started {
        /// Index of the operation.
        op: usize,
    },
    /// Operation `op` succeeded.
    Finished {
        /// Index of the operation.
        op: usize,
    },
    /// Operation `op` failed.
    Failed {
        /// Index of the operation.
        op: usize,
        /// The error and its causes, `: `-separated.
        error: String,
    },
    /// Operation `op` went on despite a problem (an optional dependency).
    Warning {
        /// Index of the operation.
        op: usize,
        /// What happened.
        message: String,
    },
}

/// What an apply did, by operation index (each list ascending).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Report {
    /// Operations that succeeded.
    pub done: Vec<usize>,
    /// Operations that failed, with the error and its causes.
    pub failed: Vec<(usize, String)>,
    /// Operations not started because of a failure.
    pub not_run: Vec<usize>,
    /// Problems gone past (optional dependencies not satisfied).
    pub warnings: Vec<String>,
}

impl Report {
    /// Whether every operation succeeded.
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.not_run.is_empty()
    }

    /// `3 done, 1 failed, 2 not run`, then the failed operations with their
    /// errors, the operations not run, and the warnings.
    pub fn render_text(&self) -> String {
        let mut out = format!(
            "{} done, {} failed, {} not run\n",
            self.done.len(),
            self.failed.len(),
            self.not_run.len()
        );
        for (op, error) in &self.failed {
            out.push_str(&format!("failed: [{op}] {error}\n"));
        }
        if !self.not_run.is_empty() {
            let ops: Vec<String> = self.not_run.iter().map(|i| format!("[{i}]")).collect();
            out.push_str(&format!("not run: {}\n", ops.join(" ")));
        }
        for w in &self.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        out
    }
}

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A backend call failed.
    #[error("failed to {op}")]
    Backend {
        /// The operation ([`Op::describe`]).
        op: String,
        /// Cause.
        #[source]
        source: BackendError,
    },
    /// A dependency did not reach its condition.
    #[error("failed waiting for service {dependency} ({condition}) before service {service}")]
    Wait {
        /// The dependent service.
        service: String,
        /// The service waited for.
        dependency: String,
        /// The condition it did not reach.
        condition: Condition,
        /// Cause (boxed: it is large, and failures are rare).
        #[source]
        source: Box<WaitError>,
    },
}

/// Applies `plan` to `host` (see the module comment), calling `events` as
/// operations start, finish, fail or warn; returns what was done.
pub fn apply<H>(
    host: &H,
    plan: &Plan,
    options: &ApplyOptions,
    events: &(dyn Fn(&Event) + Sync),
) -> Report
where
    H: ContainerBackend + NetworkBackend + VolumeBackend + ImageBackend + Sync,
{
    let workers = match options.parallel {
        0 => DEFAULT_PARALLEL,
        n => n,
    }
    .min(plan.ops.len());
    let run = Run {
        host,
        plan,
        options,
        events,
        span: tracing::info_span!("apply", ops = plan.ops.len(), workers),
        board: Mutex::new(Board {
            states: vec![State::Waiting; plan.ops.len()],
            running: 0,
            failed: Vec::new(),
            warnings: Vec::new(),
        }),
        wake: Condvar::new(),
    };
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| run.worker());
        }
    });
    run.report()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Running,
    Done,
    Failed,
}

/// Shared progress of a run.
struct Board {
    states: Vec<State>,
    running: usize,
    failed: Vec<(usize, String)>,
    warnings: Vec<String>,
}

/// One apply in progress, shared by its worker threads.
struct Run<'a, H> {
    host: &'a H,
    plan: &'a Plan,
    options: &'a ApplyOptions,
    events: &'a (dyn Fn(&Event) + Sync),
    /// Parent of the per-operation spans, which run on other threads.
    span: tracing::Span,
    board: Mutex<Board>,
    wake: Condvar,
}

impl<H> Run<'_, H>
where
    H: ContainerBackend + NetworkBackend + VolumeBackend + ImageBackend + Sync,
{
    fn lock(&self) -> MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs ready operations until there are none left to run.
    fn worker(&self) {
        while let Some(i) = self.next() {
            let op = &self.plan.ops[i];
            let span = tracing::info_span!(
                parent: &self.span,
                "op",
                index = i,
                id = %op.id,
                action = %op.describe()
            );
            let _entered = span.enter();
            (self.events)(&Event::Started { op: i });
            let outcome = run_op(self.host, op, self.options);
            let mut board_warning = None;
            let state = match outcome {
                Ok(warning) => {
                    if let Some(message) = warning {
                        tracing::warn!(%message, "optional dependency not satisfied");
                        (self.events)(&Event::Warning {
                            op: i,
                            message: message.clone(),
                        });
                        board_warning = Some(message);
                    }
                    (self.events)(&Event::Finished { op: i });
                    Ok(())
                }
                Err(e) => {
                    let error = error_chain(&e);
                    tracing::debug!(%error, "operation failed");
                    (self.events)(&Event::Failed {
                        op: i,
                        error: error.clone(),
                    });
                    Err(error)
                }
            };
            self.finish(i, state, board_warning);
        }
    }

    /// The lowest-index operation whose dependencies are all done, marked
    /// running; `None` once nothing more will become ready.
    fn next(&self) -> Option<usize> {
        let mut board = self.lock();
        loop {
            if board.failed.is_empty() {
                let ready = (0..self.plan.ops.len()).find(|&i| {
                    board.states[i] == State::Waiting
                        && self.plan.ops[i]
                            .deps
                            .iter()
                            .all(|&d| board.states.get(d) == Some(&State::Done))
                });
                if let Some(i) = ready {
                    board.states[i] = State::Running;
                    board.running += 1;
                    return Some(i);
                }
            }
            if board.running == 0 {
                return None;
            }
            board = self.wake.wait(board).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn finish(&self, i: usize, outcome: Result<(), String>, warning: Option<String>) {
        let mut board = self.lock();
        board.running -= 1;
        board.warnings.extend(warning);
        board.states[i] = match outcome {
            Ok(()) => State::Done,
            Err(error) => {
                board.failed.push((i, error));
                State::Failed
            }
        };
        self.wake.notify_all();
    }

    fn report(self) -> Report {
        let board = self.board.into_inner().unwrap_or_else(|e| e.into_inner());
        let with = |s: State| -> Vec<usize> {
            (0..board.states.len())
                .filter(|&i| board.states[i] == s)
                .collect()
        };
        let mut failed = board.failed.clone();
        failed.sort_by_key(|(i, _)| *i);
        Report {
            done: with(State::Done),
            not_run: with(State::Waiting),
            failed,
            warnings: board.warnings.clone(),
        }
    }
}

/// Does one operation; `Ok(Some(warning))` when it went past a problem.
fn run_op<H>(host: &H, op: &Op, options: &ApplyOptions) -> Result<Option<String>, ApplyError>
where
    H: ContainerBackend + NetworkBackend + VolumeBackend + ImageBackend,
{
    let backend = |source| ApplyError::Backend {
        op: op.describe(),
        source,
    };
    match &op.action {
        Action::CreateNetwork(s) => host.create_network(s).map_err(backend)?,
        Action::RemoveNetwork { name } => gone_ok(host.remove_network(name)).map_err(backend)?,
        Action::CreateVolume(s) => host.create_volume(s).map_err(backend)?,
        Action::RemoveVolume { name } => gone_ok(host.remove_volume(name)).map_err(backend)?,
        Action::PullImage { reference } => host.pull_image(reference).map(drop).map_err(backend)?,
        Action::CreateContainer(s) => host.create_container(s).map_err(backend)?,
        Action::StartContainer { name, .. } => host.start_container(name).map_err(backend)?,
        Action::StopContainer { name, .. } => {
            gone_ok(host.stop_container(name, options.stop_timeout)).map_err(backend)?;
        }
        Action::RemoveContainer { name, volumes, .. } => {
            gone_ok(host.remove_container(name, *volumes)).map_err(backend)?;
        }
        Action::RecreateContainer(spec) => recreate(host, spec, options).map_err(backend)?,
        Action::RestartContainer { name, .. } => restart(host, name, options).map_err(backend)?,
        Action::WaitFor {
            project,
            service,
            dependency,
            condition,
            required,
        } => {
            let waited = wait::for_dependency(
                host,
                project,
                dependency,
                *condition,
                options.wait_timeout,
                options.poll,
            );
            let Err(source) = waited else {
                return Ok(None);
            };
            let error = ApplyError::Wait {
                service: service.clone(),
                dependency: dependency.clone(),
                condition: *condition,
                source: Box::new(source),
            };
            if *required {
                return Err(error);
            }
            return Ok(Some(format!(
                "{}; going on, as the dependency is optional (required: false)",
                error_chain(&error)
            )));
        }
    }
    Ok(None)
}

/// "Already gone" is success for a removal.
fn gone_ok(result: Result<(), BackendError>) -> Result<(), BackendError> {
    match result {
        Err(BackendError::NotFound { .. }) => Ok(()),
        other => other,
    }
}

/// Stops (when live) and removes the old container, keeping its anonymous
/// volumes for the new one, then creates and starts the new one.
fn recreate<H: ContainerBackend>(
    host: &H,
    spec: &ContainerSpec,
    options: &ApplyOptions,
) -> Result<(), BackendError> {
    match host.inspect_container(&spec.name) {
        Ok(old) => {
            if old.status.is_live() {
                gone_ok(host.stop_container(&spec.name, options.stop_timeout))?;
            }
            gone_ok(host.remove_container(&spec.name, false))?;
        }
        Err(BackendError::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    host.create_container(spec)?;
    host.start_container(&spec.name)
}

/// Stops the container when it is live, then starts it.
fn restart<H: ContainerBackend>(
    host: &H,
    name: &str,
    options: &ApplyOptions,
) -> Result<(), BackendError> {
    if host.inspect_container(name)?.status.is_live() {
        host.stop_container(name, options.stop_timeout)?;
    }
    host.start_container(name)
}

/// `error: cause: cause`, without repeating a message its cause repeats.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests;
