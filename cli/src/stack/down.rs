//! `rcompose down`: stop and remove the project's containers (dependents
//! first), its networks, and with `-v` its volumes. Works from labels when
//! no stack file is found.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use rcompose_reconciler::apply::{self, ApplyOptions};
use rcompose_reconciler::plan::{DownOptions, plan_down};

use super::progress::{Progress, ProgressMode};
use super::{Session, lock_timeout};
use crate::ProjectArgs;
use crate::host::HostArgs;

/// Options of `down`.
#[derive(Args, Debug)]
pub struct DownArgs {
    /// Remove named volumes declared in the stack and anonymous volumes too.
    #[arg(short, long)]
    volumes: bool,
    /// Remove containers of services no longer in the file.
    #[arg(long)]
    remove_orphans: bool,
    /// Seconds to wait for each container to stop before killing it.
    #[arg(short = 't', long)]
    timeout: Option<u64>,
    /// Seconds to wait for another rcompose working on the project (negative: forever).
    #[arg(long, default_value = "-1", allow_negative_numbers = true)]
    lock_timeout: f64,
    /// Operations run at once.
    #[arg(long, default_value_t = 4)]
    parallel: usize,
    /// How progress is shown.
    #[arg(long, value_enum, default_value = "auto")]
    progress: ProgressMode,
    /// Services (default: all).
    services: Vec<String>,
}

/// `rcompose down`.
pub fn down(project: &ProjectArgs, host: &HostArgs, args: &DownArgs) -> anyhow::Result<ExitCode> {
    let session = Session::open(project, host, false, Vec::new())?;
    let _lock = session.lock(lock_timeout(Some(args.lock_timeout)))?;
    let observed = session.observe()?;
    let options = DownOptions {
        volumes: args.volumes,
        remove_orphans: args.remove_orphans,
        services: args.services.clone(),
    };
    let plan = plan_down(session.desired.as_ref(), &observed, &options);
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    if plan.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let progress = Progress::new(&plan, args.progress);
    let options = ApplyOptions {
        parallel: args.parallel,
        stop_timeout: args.timeout.map(Duration::from_secs),
        ..ApplyOptions::default()
    };
    let report = apply::apply(&session.backend, &plan, &options, &|e| progress.event(e));
    if !report.ok() {
        bail!("down failed: {}", report.render_text().trim_end());
    }
    Ok(ExitCode::SUCCESS)
}
