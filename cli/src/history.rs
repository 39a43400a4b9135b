//! `rcompose history` and `rcompose rollback [REV]`: the revisions `watch`,
//! `sync` and `up` recorded, and going back to one of them (plan first with
//! `--dry-run`).

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use rcompose_reconciler::apply::{self, ApplyOptions};
use rcompose_reconciler::history::{History, NewRevision, Source};
use rcompose_reconciler::{PlanOptions, render};

use crate::ProjectArgs;
use crate::host::HostArgs;
use crate::stack::{Progress, Session, lock_timeout};

/// Options of `history`.
#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Options of `rollback`.
#[derive(Args, Debug)]
pub struct RollbackArgs {
    /// Revision to return to (default: the one before the latest).
    revision: Option<u64>,
    /// Only print the plan.
    #[arg(long)]
    dry_run: bool,
    /// Remove containers of services the revision does not have.
    #[arg(long)]
    remove_orphans: bool,
    /// Operations run at once.
    #[arg(long, default_value_t = rcompose_reconciler::apply::DEFAULT_PARALLEL)]
    parallel: usize,
    /// Seconds to wait for another rcompose working on the project (negative: forever).
    #[arg(long, default_value = "-1", allow_negative_numbers = true)]
    lock_timeout: f64,
}

/// `rcompose history`.
pub fn history(
    project: &ProjectArgs,
    host: &HostArgs,
    args: &HistoryArgs,
) -> anyhow::Result<ExitCode> {
    let session = Session::open(project, host, false, Vec::new())?;
    let list = History::new(&host.root, &session.name).list()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:>5}  {:<20}  {:<40}  TRIGGER", "REV", "TIME", "SOURCE");
    for r in list {
        println!(
            "{:>5}  {:<20}  {:<40}  {}",
            r.number,
            r.time,
            r.source.to_string(),
            r.trigger
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Records a revision after a successful apply of `session`'s project.
pub fn record(
    session: &Session,
    host: &HostArgs,
    trigger: &str,
    source: Source,
) -> anyhow::Result<u64> {
    let loaded = session.loaded.as_ref().context("no stack loaded")?;
    let observed = session.observe()?;
    let revision = History::new(&host.root, &session.name).record(NewRevision {
        trigger: trigger.to_string(),
        source,
        project: rcompose_spec::config_json(&loaded.project),
        images: observed.images,
        inputs: rcompose_reconciler::history::input_digests(&session.inputs()?),
    })?;
    Ok(revision.number)
}

/// The source of a session loaded from files.
pub fn file_source(session: &Session) -> Source {
    let path = session
        .loaded
        .as_ref()
        .and_then(|l| l.files.first())
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    Source::File { path }
}

/// `rcompose rollback`.
pub fn rollback(
    project: &ProjectArgs,
    host: &HostArgs,
    args: &RollbackArgs,
) -> anyhow::Result<ExitCode> {
    let mut session = Session::open(project, host, false, Vec::new())?;
    let history = History::new(&host.root, &session.name);
    let list = history.list()?;
    let number = match args.revision {
        Some(n) => n,
        None => match list.as_slice() {
            [.., before, _latest] => before.number,
            _ => bail!(
                "project {} has no earlier revision to return to",
                session.name
            ),
        },
    };
    let revision = history
        .get(number)?
        .with_context(|| format!("project {} has no revision {number}", session.name))?;
    let target: rcompose_spec::Project = serde_json::from_value(revision.project.clone())
        .with_context(|| format!("revision {number} cannot be read back"))?;
    if session.loaded.is_none() {
        // A revision synced from git: its checkout holds the files it read.
        if let Source::Git {
            repo, commit, path, ..
        } = &revision.source
        {
            let file = crate::sync::SyncDir::new(&host.root, repo)
                .checkout(commit)
                .join(path);
            if file.exists() {
                let mut from_git = project.clone();
                from_git.files = vec![file];
                session = Session::open(&from_git, host, true, Vec::new())?;
            }
        }
    }
    if session.loaded.is_none() {
        bail!("rollback needs the stack file (-f) for its directory and environment");
    }
    session.replace_project(target)?;
    let desired = session.desired()?;
    let _lock = if args.dry_run {
        None
    } else {
        Some(session.lock(lock_timeout(Some(args.lock_timeout)))?)
    };
    let observed = session.observe()?;
    let options = PlanOptions {
        remove_orphans: args.remove_orphans,
        ..PlanOptions::default()
    };
    let plan = rcompose_reconciler::plan(desired, &observed, &options);
    print!(
        "{}",
        render::render_human(&plan, std::io::stdout().is_terminal())
    );
    if args.dry_run || plan.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let options = ApplyOptions {
        parallel: args.parallel,
        ..ApplyOptions::default()
    };
    let progress = Progress::new(&plan, project.progress);
    let report = apply::apply(&session.backend, &plan, &options, &|e| progress.event(e));
    if !report.ok() {
        bail!("rollback failed: {}", report.render_text().trim_end());
    }
    let recorded = record(
        &session,
        host,
        &format!("rollback to {number}"),
        revision.source,
    )?;
    eprintln!("rolled back to revision {number} (recorded as revision {recorded})");
    Ok(ExitCode::SUCCESS)
}
