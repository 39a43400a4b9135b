//! `rcompose up`, `rcompose plan` and `rcompose apply PLAN`: observe, plan,
//! and (except for `plan`) apply under the project lock.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use rcompose_reconciler::apply::{self, ApplyOptions};
use rcompose_reconciler::planfile::{self, PlanFile};
use rcompose_reconciler::render;
use rcompose_reconciler::{Plan, PlanOptions, PullPolicy};

use super::progress::{Progress, ProgressMode};
use super::{Session, lock_timeout};
use crate::ProjectArgs;
use crate::host::HostArgs;

/// What decides the plan, shared by `up` and `plan`.
#[derive(Args, Debug, Clone)]
pub struct ConvergeArgs {
    /// Recreate containers even if their configuration is unchanged.
    #[arg(long, conflicts_with = "no_recreate")]
    force_recreate: bool,
    /// Never recreate existing containers.
    #[arg(long)]
    no_recreate: bool,
    /// Don't touch the services the named ones depend on.
    #[arg(long)]
    no_deps: bool,
    /// Remove containers and networks of services no longer in the file.
    #[arg(long)]
    remove_orphans: bool,
    /// When to pull images.
    #[arg(long, value_enum, default_value = "missing")]
    pull: Pull,
    /// Registry reachable over plain HTTP (loopback ones always are; repeatable).
    #[arg(long = "insecure-registry")]
    insecure_registries: Vec<String>,
    /// Seconds to wait for another rcompose working on the project (negative: forever).
    #[arg(long, default_value = "-1", allow_negative_numbers = true)]
    lock_timeout: f64,
    /// Services (default: all).
    services: Vec<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Pull {
    Missing,
    Always,
    Never,
}

impl ConvergeArgs {
    fn plan_options(&self) -> PlanOptions {
        PlanOptions {
            remove_orphans: self.remove_orphans,
            force_recreate: self.force_recreate,
            no_recreate: self.no_recreate,
            pull: match self.pull {
                Pull::Missing => PullPolicy::Missing,
                Pull::Always => PullPolicy::Always,
                Pull::Never => PullPolicy::Never,
            },
            services: self.services.clone(),
            no_deps: self.no_deps,
        }
    }
}

/// How an apply runs, shared by `up` and `apply`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Operations run at once.
    #[arg(long, default_value_t = rcompose_reconciler::apply::DEFAULT_PARALLEL)]
    parallel: usize,
}

/// Options of `up`.
#[derive(Args, Debug)]
pub struct UpArgs {
    /// Return once applied; containers keep running (no log streaming).
    #[arg(short, long)]
    detach: bool,
    /// Return only when every service is running, healthy, or a completed job.
    #[arg(long)]
    wait: bool,
    /// Seconds `--wait` waits at most.
    #[arg(long)]
    wait_timeout: Option<u64>,
    #[command(flatten)]
    converge: ConvergeArgs,
    #[command(flatten)]
    run: RunArgs,
}

/// Options of `plan`.
#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: PlanFormat,
    /// Exit 2 when there are changes (0: none, 1: error).
    #[arg(long)]
    detailed_exitcode: bool,
    /// Save the plan for `rcompose apply FILE`.
    #[arg(short, long)]
    out: Option<PathBuf>,
    /// Colour the text output: auto, always or never.
    #[arg(long, default_value = "auto")]
    color: String,
    #[command(flatten)]
    converge: ConvergeArgs,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum PlanFormat {
    Text,
    Json,
    Markdown,
}

/// Options of `apply`.
#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// A plan saved by `rcompose plan -o FILE`.
    plan: PathBuf,
    /// Seconds to wait for another rcompose working on the project (negative: forever).
    #[arg(long, default_value = "-1", allow_negative_numbers = true)]
    lock_timeout: f64,
    #[command(flatten)]
    run: RunArgs,
}

/// `rcompose up`.
pub fn up(project: &ProjectArgs, host: &HostArgs, args: &UpArgs) -> anyhow::Result<ExitCode> {
    let c = &args.converge;
    let session = Session::open(project, host, true, c.insecure_registries.clone())?;
    let desired = session.desired()?;
    check_services(desired, &c.services)?;
    session.check_supported()?;
    let _lock = session.lock(lock_timeout(Some(c.lock_timeout)))?;
    let observed = session.observe()?;
    let plan = rcompose_reconciler::plan(desired, &observed, &c.plan_options());
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    run_plan(&session, &plan, &args.run, project.progress)?;
    if !plan.is_empty() {
        let source = crate::history::file_source(&session);
        crate::history::record(&session, host, "up", source)?;
    }
    if args.wait {
        let timeout = args.wait_timeout.map(Duration::from_secs);
        let poll = Duration::from_millis(200);
        apply::wait_ready(&session.backend, desired, &c.services, timeout, poll)?;
    }
    if !args.detach && !args.wait {
        return super::services::attach(&session, &c.services, true);
    }
    Ok(ExitCode::SUCCESS)
}

fn check_services(
    desired: &rcompose_reconciler::Desired,
    services: &[String],
) -> anyhow::Result<()> {
    for s in services {
        if desired.service(s).is_none() {
            bail!("no such service: {s}");
        }
    }
    Ok(())
}

/// Applies `plan`, printing progress; an error naming what was not done
/// when an operation failed.
fn run_plan(
    session: &Session,
    plan: &Plan,
    run: &RunArgs,
    mode: ProgressMode,
) -> anyhow::Result<()> {
    if plan.is_empty() {
        return Ok(());
    }
    let progress = Progress::new(plan, mode);
    let options = ApplyOptions {
        parallel: run.parallel,
        ..ApplyOptions::default()
    };
    let report = apply::apply(&session.backend, plan, &options, &|e| progress.event(e));
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if !report.ok() {
        bail!("apply failed: {}", report.render_text().trim_end());
    }
    Ok(())
}

/// `rcompose plan`.
pub fn plan(project: &ProjectArgs, host: &HostArgs, args: &PlanArgs) -> anyhow::Result<ExitCode> {
    let c = &args.converge;
    let session = Session::open(project, host, true, c.insecure_registries.clone())?;
    let desired = session.desired()?;
    check_services(desired, &c.services)?;
    session.check_supported()?;
    let observed = session.observe()?;
    let options = c.plan_options();
    let plan = rcompose_reconciler::plan(desired, &observed, &options);
    match args.format {
        PlanFormat::Text => {
            let colour = match args.color.as_str() {
                "always" => true,
                "never" => false,
                _ => std::io::stdout().is_terminal(),
            };
            print!("{}", render::render_human(&plan, colour));
        }
        PlanFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&render::render_json(&plan))?
        ),
        PlanFormat::Markdown => print!("{}", render::render_markdown(&plan)),
    }
    if let Some(out) = &args.out {
        let file = PlanFile::new(
            &session.name,
            planfile::Fingerprint {
                observed: planfile::fingerprint_observed(&observed),
                inputs: planfile::fingerprint_inputs(&session.inputs()?),
            },
            serde_json::to_value(&options)?,
            plan.clone(),
        );
        file.save(out)
            .with_context(|| format!("save the plan to {}", out.display()))?;
        if args.format == PlanFormat::Text {
            eprintln!(
                "plan saved to {}; apply it with `rcompose apply {}`",
                out.display(),
                out.display()
            );
        }
    }
    Ok(if args.detailed_exitcode && !plan.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// `rcompose apply PLAN`: exactly the saved plan, refused when the host or
/// the stack files changed since it was made.
pub fn apply_file(
    project: &ProjectArgs,
    host: &HostArgs,
    args: &ApplyArgs,
) -> anyhow::Result<ExitCode> {
    let saved = PlanFile::load(&args.plan)?;
    let session = Session::open(project, host, true, Vec::new())?;
    let _lock = session.lock(lock_timeout(Some(args.lock_timeout)))?;
    let observed = session.observe()?;
    saved
        .check(
            &session.name,
            &planfile::fingerprint_observed(&observed),
            &planfile::fingerprint_inputs(&session.inputs()?),
        )
        .with_context(|| format!("refusing to apply {}", args.plan.display()))?;
    run_plan(&session, &saved.plan, &args.run, project.progress)?;
    Ok(ExitCode::SUCCESS)
}
