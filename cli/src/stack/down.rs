//! `rcompose down`: stop and remove the project's containers (dependents
//! first), its networks, and with `-v` its volumes. Works from labels when
//! no stack file is found.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use rcompose_reconciler::apply::{self, ApplyOptions};
use rcompose_reconciler::plan::{DownOptions, plan_down};

use super::progress::Progress;
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
    /// Remove images too: `local` (those named after the service, with no
    /// image of their own in the file) or `all` (every image the services use).
    #[arg(long, value_enum)]
    rmi: Option<Rmi>,
    /// Seconds to wait for each container to stop before killing it.
    #[arg(short = 't', long)]
    timeout: Option<u64>,
    /// Seconds to wait for another rcompose working on the project (negative: forever).
    #[arg(long, default_value = "-1", allow_negative_numbers = true)]
    lock_timeout: f64,
    /// Operations run at once.
    #[arg(long, default_value_t = rcompose_reconciler::apply::DEFAULT_PARALLEL)]
    parallel: usize,
    /// Services (default: all).
    services: Vec<String>,
}

/// `--rmi`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Rmi {
    Local,
    All,
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
    let images = images_to_remove(&session, &observed, args.rmi);
    if plan.is_empty() {
        return remove_images(host, &images);
    }
    let progress = Progress::new(&plan, project.progress);
    let options = ApplyOptions {
        parallel: args.parallel,
        stop_timeout: args.timeout.map(Duration::from_secs),
        ..ApplyOptions::default()
    };
    let report = apply::apply(&session.backend, &plan, &options, &|e| progress.event(e));
    if !report.ok() {
        bail!("down failed: {}", report.render_text().trim_end());
    }
    remove_images(host, &images)
}

/// The images `--rmi` names: with a stack file, those of its services (for
/// `local`, only the ones the file gives no `image:` for, named
/// `<project>-<service>`); without one, those the project's containers ran.
fn images_to_remove(
    session: &Session,
    observed: &rcompose_reconciler::ObservedState,
    rmi: Option<Rmi>,
) -> Vec<String> {
    let Some(rmi) = rmi else { return Vec::new() };
    let mut out: Vec<String> = match (&session.loaded, &session.desired) {
        (Some(loaded), Some(desired)) => desired
            .services
            .iter()
            .filter(|s| {
                rmi == Rmi::All
                    || loaded
                        .project
                        .services
                        .get(&s.name)
                        .is_some_and(|svc| svc.image.is_none())
            })
            .map(|s| s.image.clone())
            .collect(),
        _ => observed
            .containers
            .iter()
            .filter_map(|c| session.backend.runtime().inspect(&c.name).ok())
            .map(|i| i.record.image.reference)
            .filter(|r| rmi == Rmi::All || !r.contains('/') || r.contains(&session.name))
            .collect(),
    };
    out.sort();
    out.dedup();
    out
}

/// Removes `images` from the store; one still used by a container is kept
/// with a warning.
fn remove_images(host: &HostArgs, images: &[String]) -> anyhow::Result<ExitCode> {
    if images.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let store = rcompose_runtime::store::Store::open(&host.root)?;
    let in_use = host.runtime()?.in_use()?;
    for image in images {
        match store.remove(&crate::image::normalize(image), &in_use) {
            Ok(record) => eprintln!(" ✔ remove image {}", record.reference),
            Err(e) => eprintln!("warning: image {image} kept: {e}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
