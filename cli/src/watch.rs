//! `rcompose watch`: the controller that keeps the host equal to the stack
//! file. Triggers (changes of any input file, state changes of the project's
//! containers, a periodic resync) feed `reconciler::controller::run`; each
//! pass loads the files, observes, plans and applies under the project lock,
//! and records a revision when it changed something. A broken file keeps
//! the last good state running; a failed apply is retried with backoff.
//! A health change is a container trigger too, so a container of a service
//! marked `x-rcompose: {restart_on_unhealthy: true}` is restarted by the
//! pass that follows its turning unhealthy.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use rcompose_reconciler::apply::{self, ApplyOptions};
use rcompose_reconciler::backend::{LABEL_PROJECT, LABEL_SERVICE};
use rcompose_reconciler::controller::{
    self, ControllerOptions, PassError, PassLog, PassReport, Reconciler, Trigger, Triggered,
};
use rcompose_reconciler::{Action, PlanOptions};
use tokio::sync::mpsc;

use crate::ProjectArgs;
use crate::host::HostArgs;
use crate::stack::{InvalidStack, Session, events};

/// Options of `watch`.
#[derive(Args, Debug, Clone)]
pub struct WatchArgs {
    /// Seconds between full resyncs when nothing else happens.
    #[arg(long, default_value_t = 30.0)]
    resync: f64,
    /// Milliseconds of quiet after a change before a pass starts.
    #[arg(long, default_value_t = 500)]
    debounce: u64,
    /// One pass, then exit (exit 1 when it failed).
    #[arg(long)]
    once: bool,
    /// Output of the pass log.
    #[arg(long, value_enum, default_value = "text")]
    format: LogFormat,
    /// Remove containers of services no longer in the file.
    #[arg(long)]
    remove_orphans: bool,
    /// Operations run at once.
    #[arg(long, default_value_t = rcompose_reconciler::apply::DEFAULT_PARALLEL)]
    parallel: usize,
    /// Registry reachable over plain HTTP (loopback ones always are; repeatable).
    #[arg(long = "insecure-registry")]
    insecure_registries: Vec<String>,
}

/// `--format` of the pass log.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One line per pass.
    Text,
    /// One JSON object per pass.
    Json,
}

/// The passes of the controller on the real host.
struct HostReconciler {
    project: ProjectArgs,
    host: HostArgs,
    args: WatchArgs,
    /// Files the last load read (stack files, `.env`, env files, configs, secrets).
    inputs: Shared<BTreeSet<PathBuf>>,
    /// The project name the last load found.
    name: Shared<String>,
    /// The watcher of the input files' directories (none with `--once`).
    watcher: Option<notify::RecommendedWatcher>,
    /// The directories it watches.
    watched: BTreeSet<PathBuf>,
}

type Shared<T> = std::sync::Arc<std::sync::Mutex<T>>;

impl HostReconciler {
    fn pass_now(&mut self, triggered: &Triggered) -> Result<PassReport, PassError> {
        let session = match Session::open(
            &self.project,
            &self.host,
            true,
            self.args.insecure_registries.clone(),
        ) {
            Ok(s) => s,
            Err(e) => match e.downcast::<InvalidStack>() {
                Ok(invalid) => {
                    eprintln!("{}", invalid.0);
                    return Err(PassError::Invalid(
                        "the stack file is invalid (errors above); the last good state keeps running"
                            .into(),
                    ));
                }
                Err(e) => return Err(PassError::Invalid(format!("{e:#}"))),
            },
        };
        let files = input_files(&session);
        if let Some(watcher) = &mut self.watcher {
            follow(watcher, &mut self.watched, &files);
        }
        if let Ok(mut inputs) = self.inputs.lock() {
            *inputs = files;
        }
        if let Ok(mut name) = self.name.lock() {
            name.clone_from(&session.name);
        }
        session
            .check_supported()
            .map_err(|e| PassError::Invalid(format!("{e:#}")))?;
        let failed = |e: anyhow::Error| PassError::Failed(format!("{e:#}"));
        let _lock = session.lock(None).map_err(failed)?;
        let desired = session.desired().map_err(failed)?;
        let observed = session.observe().map_err(failed)?;
        let options = PlanOptions {
            remove_orphans: self.args.remove_orphans,
            ..PlanOptions::default()
        };
        let plan = rcompose_reconciler::plan(desired, &observed, &options);
        let drift = drift_of(&plan, &observed);
        if plan.is_empty() {
            return Ok(PassReport {
                summary: "no changes".into(),
                changed: false,
                drift,
            });
        }
        let apply_options = ApplyOptions {
            parallel: self.args.parallel,
            ..ApplyOptions::default()
        };
        let report = apply::apply(&session.backend, &plan, &apply_options, &|_| {});
        if !report.ok() {
            return Err(PassError::Failed(
                report.render_text().trim_end().replace('\n', "; "),
            ));
        }
        let source = crate::history::file_source(&session);
        crate::history::record(&session, &self.host, &triggered.summary(), source)
            .map_err(failed)?;
        Ok(PassReport {
            summary: format!("{} operations applied", report.done.len()),
            changed: true,
            drift,
        })
    }
}

impl Reconciler for HostReconciler {
    async fn pass(&mut self, triggered: &Triggered) -> Result<PassReport, PassError> {
        self.pass_now(triggered)
    }
}

/// What a pass found different from the last good state besides the file:
/// containers gone, stopped, dead or unhealthy (those restarted because
/// their service is marked `restart_on_unhealthy`), networks and volumes
/// missing.
fn drift_of(
    plan: &rcompose_reconciler::Plan,
    observed: &rcompose_reconciler::ObservedState,
) -> Vec<String> {
    let mut out = Vec::new();
    for op in &plan.ops {
        match &op.action {
            Action::StartContainer { name, .. } => {
                let found = observed.containers.iter().find(|c| &c.name == name);
                if let Some(c) = found.filter(|c| !c.status.is_live()) {
                    let code = c
                        .exit_code
                        .map(|c| format!(" (exit {c})"))
                        .unwrap_or_default();
                    out.push(format!("container {name} was {:?}{code}", c.status).to_lowercase());
                }
            }
            Action::CreateContainer(spec)
                if observed
                    .containers
                    .iter()
                    .all(|c| c.service != spec.service) =>
            {
                out.push(format!("container {} was missing", spec.name));
            }
            // Only the health cause is drift: a restart because a
            // dependency changed follows that dependency's own drift.
            Action::RestartContainer { name, .. }
                if op.cause.iter().any(|c| c.field == "health") =>
            {
                out.push(format!("container {name} was unhealthy"));
            }
            Action::RemoveNetwork { name } => {
                if let Some(c) = op.cause.iter().find(|c| c.field == "network") {
                    let reason = c.old.clone().unwrap_or_default();
                    out.push(format!("network {name}: {reason}"));
                }
            }
            Action::CreateNetwork(spec)
                if !plan.ops.iter().any(
                    |o| matches!(&o.action, Action::RemoveNetwork { name } if *name == spec.name),
                ) =>
            {
                out.push(format!("network {} was missing", spec.name));
            }
            _ => {}
        }
    }
    out
}

/// Every file whose change should trigger a pass.
fn input_files(session: &Session) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let Some(loaded) = &session.loaded else {
        return out;
    };
    out.extend(loaded.files.iter().cloned());
    let dir = session.dir.clone();
    out.insert(dir.join(".env"));
    let project = &loaded.project;
    let file_of = |f: &Option<String>| f.as_ref().map(|f| dir.join(f));
    out.extend(project.configs.values().filter_map(|c| file_of(&c.file)));
    out.extend(project.secrets.values().filter_map(|s| file_of(&s.file)));
    for svc in project.services.values() {
        for env_file in &svc.env_file {
            out.insert(dir.join(&env_file.path));
        }
    }
    out
}

/// `rcompose watch`.
pub fn watch(project: &ProjectArgs, host: &HostArgs, args: &WatchArgs) -> anyhow::Result<ExitCode> {
    let inputs: Shared<BTreeSet<PathBuf>> = Shared::default();
    let name: Shared<String> = Shared::default();
    let mut reconciler = HostReconciler {
        project: project.clone(),
        host: host.clone(),
        args: args.clone(),
        inputs: inputs.clone(),
        name: name.clone(),
        watcher: None,
        watched: BTreeSet::new(),
    };
    let format = args.format;
    let print = move |log: &PassLog| match format {
        LogFormat::Text => println!("{}", log.render_text()),
        LogFormat::Json => println!("{}", serde_json::to_string(log).unwrap_or_default()),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    if args.once {
        let triggered = Triggered {
            triggers: vec![Trigger::Start],
        };
        let started = std::time::Instant::now();
        let result = rt.block_on(reconciler.pass(&triggered));
        let ok = result.is_ok();
        let time = rcompose_reconciler::history::rfc3339(std::time::SystemTime::now());
        let log = PassLog::new(1, time, triggered, result, started.elapsed(), None);
        print(&log);
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let (tx, rx) = mpsc::channel(1024);
    reconciler.watcher = Some(file_watcher(tx.clone(), inputs)?);
    container_events(name, host.clone(), tx.clone());
    let options = ControllerOptions {
        debounce: Duration::from_millis(args.debounce),
        resync: (args.resync > 0.0).then(|| Duration::from_secs_f64(args.resync)),
        ..ControllerOptions::default()
    };
    let mut on_pass = print;
    rt.block_on(controller::run(
        &mut reconciler,
        rx,
        &options,
        &mut on_pass,
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    ));
    Ok(ExitCode::SUCCESS)
}

/// Watches the directories of the input files (editors save by rename,
/// which drops a watch on the file itself) and sends the changed inputs.
fn file_watcher(
    tx: mpsc::Sender<Trigger>,
    inputs: Shared<BTreeSet<PathBuf>>,
) -> anyhow::Result<notify::RecommendedWatcher> {
    Ok(notify::recommended_watcher(
        move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            if event.kind.is_access() {
                return;
            }
            let wanted = inputs.lock().map(|i| i.clone()).unwrap_or_default();
            let hit: Vec<PathBuf> = event
                .paths
                .into_iter()
                .filter(|p| wanted.contains(p))
                .collect();
            if !hit.is_empty() {
                let _ = tx.blocking_send(Trigger::Files(hit));
            }
        },
    )?)
}

/// Makes the watcher follow the directories of `inputs`.
fn follow(
    watcher: &mut notify::RecommendedWatcher,
    watched: &mut BTreeSet<PathBuf>,
    inputs: &BTreeSet<PathBuf>,
) {
    use notify::Watcher as _;
    let now: BTreeSet<PathBuf> = inputs
        .iter()
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .filter(|d| d.is_dir())
        .collect();
    for d in now.difference(watched) {
        if let Err(e) = watcher.watch(d, notify::RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %d.display(), error = %e, "cannot watch");
        }
    }
    for d in watched.difference(&now) {
        let _ = watcher.unwatch(d);
    }
    *watched = now;
}

/// Polls the project's containers once a second and sends a trigger when
/// one changes status or health, appears or disappears.
fn container_events(name: Shared<String>, host: HostArgs, tx: mpsc::Sender<Trigger>) {
    std::thread::spawn(move || {
        let Ok(runtime) = host.runtime() else { return };
        let mut last: Option<events::Snapshot> = None;
        loop {
            let name = name.lock().map(|n| n.clone()).unwrap_or_default();
            let ours: Vec<_> = runtime
                .list()
                .unwrap_or_default()
                .into_iter()
                .filter(|c| {
                    let labels = &c.record.config.labels;
                    labels.contains_key(LABEL_SERVICE) && labels.get(LABEL_PROJECT) == Some(&name)
                })
                .collect();
            let now = events::snapshot(&ours);
            if let Some(before) = &last {
                for event in events::diff(before, &now, "") {
                    let trigger = Trigger::Container {
                        name: event.id,
                        what: event.action,
                    };
                    if tx.blocking_send(trigger).is_err() {
                        return;
                    }
                }
            }
            last = Some(now);
            std::thread::sleep(Duration::from_secs(1));
        }
    });
}
