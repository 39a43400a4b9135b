//! The stack commands: `up`, `plan`, `apply`, `down`, `ps` and the other
//! commands that act on a project's services, with the real host behind the
//! reconciler's backend traits.

pub mod backend;
mod down;
pub mod events;
mod progress;
mod services;
pub mod translate;
mod up;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use rcompose_reconciler::lock::ProjectLock;
use rcompose_reconciler::{Desired, ObservedState};
use rcompose_spec::LoadError;

pub use down::{DownArgs, down};
pub use progress::{Progress, ProgressMode};
pub use services::{ServiceCommand, run_service_command};
pub use up::{ApplyArgs, PlanArgs, UpArgs, apply_file, plan, up};

use crate::ProjectArgs;
use crate::host::HostArgs;
use backend::HostBackend;

/// A stack file that did not load, with every problem found in it. The
/// command's error report prints them (as text, or in its JSON object).
#[derive(Debug)]
pub struct InvalidStack(pub rcompose_spec::Diagnostics);

impl std::fmt::Display for InvalidStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the stack file is invalid; nothing was changed")
    }
}

impl std::error::Error for InvalidStack {}

/// One project on this host: its stack (when a file was found), its desired
/// state and the backends.
pub struct Session {
    /// Project name.
    pub name: String,
    /// The loaded stack, `None` when working from labels alone.
    pub loaded: Option<rcompose_spec::Loaded>,
    /// What the host should hold (empty without a stack).
    pub desired: Option<Desired>,
    /// The host.
    pub backend: HostBackend,
    /// Directory relative paths resolve against.
    pub dir: PathBuf,
    host: HostArgs,
    env: std::collections::BTreeMap<String, String>,
    insecure_registries: Vec<String>,
}

impl Session {
    /// Loads the stack (an invalid one is an [`InvalidStack`] error) and
    /// wires the host. With `require_file: false`, a missing stack file is
    /// not an error: the project is the one `-p` or the directory names.
    pub fn open(
        project: &ProjectArgs,
        host: &HostArgs,
        require_file: bool,
        insecure_registries: Vec<String>,
    ) -> anyhow::Result<Session> {
        let mut opts = project.load_options()?;
        opts.schema_cache = Some(host.root.join("cache").join("schema"));
        let loaded = match rcompose_spec::load(&opts) {
            Ok(l) => Some(l),
            Err(LoadError::Invalid(diags)) => return Err(InvalidStack(diags).into()),
            Err(LoadError::NoStackFile { .. }) if !require_file => None,
            Err(e) => return Err(e.into()),
        };
        if let Some(l) = &loaded {
            for w in &l.warnings {
                eprintln!("warning: {w}");
            }
        }
        let name = match &loaded {
            Some(l) => l.project.name.clone().unwrap_or_default(),
            None => project.project_name.clone().unwrap_or_else(|| {
                let dir = project
                    .project_directory
                    .clone()
                    .unwrap_or_else(|| opts.working_dir.clone());
                rcompose_spec::normalize::normalize_project_name(
                    &dir.file_name().unwrap_or_default().to_string_lossy(),
                )
            }),
        };
        let dir = loaded
            .as_ref()
            .and_then(|l| l.files.first())
            .and_then(|f| f.parent().map(Path::to_path_buf))
            .or_else(|| project.project_directory.clone())
            .unwrap_or_else(|| opts.working_dir.clone());
        let dir = project.project_directory.clone().unwrap_or(dir);
        let backend = HostBackend::new(
            host,
            &name,
            loaded.as_ref().map(|l| l.project.clone()),
            dir.clone(),
            opts.environment.clone().into_iter().collect(),
            insecure_registries.clone(),
        )?;
        // The planner reads no files: the content of configs and secrets
        // reaches it as one digest per service.
        let desired = loaded
            .as_ref()
            .map(|l| Desired::from_project(&l.project).with_file_digests(backend.file_digests()));
        Ok(Session {
            name,
            loaded,
            desired,
            backend,
            dir,
            host: host.clone(),
            env: opts.environment.clone().into_iter().collect(),
            insecure_registries,
        })
    }

    /// The same session on another version of the project (a revision for
    /// `rollback`): the desired state and the backend follow it.
    pub fn replace_project(&mut self, project: rcompose_spec::Project) -> anyhow::Result<()> {
        self.backend = HostBackend::new(
            &self.host,
            &self.name,
            Some(project.clone()),
            self.dir.clone(),
            self.env.clone(),
            self.insecure_registries.clone(),
        )?;
        let desired =
            Desired::from_project(&project).with_file_digests(self.backend.file_digests());
        self.desired = Some(desired);
        match &mut self.loaded {
            Some(loaded) => loaded.project = project,
            None => anyhow::bail!("no stack file loaded"),
        }
        Ok(())
    }

    /// The desired state; an error when no stack file was found.
    pub fn desired(&self) -> anyhow::Result<&Desired> {
        self.desired
            .as_ref()
            .context("no stack file found (use -f FILE)")
    }

    /// Refuses, before anything is made, what the host cannot do: volume
    /// drivers other than `local` (or bad `local` options) and network
    /// drivers other than `bridge`.
    pub fn check_supported(&self) -> anyhow::Result<()> {
        let desired = self.desired()?;
        for v in desired.volumes.values().filter(|v| !v.external) {
            rcompose_volumes::validate(&rcompose_volumes::VolumeRequest {
                name: v.name.clone(),
                driver: v.config.driver.clone(),
                driver_opts: v.config.driver_opts.clone(),
                labels: v.labels.clone(),
                external: false,
            })?;
        }
        for n in desired.networks.values().filter(|n| !n.external) {
            if let Some(driver) = n.config.driver.as_deref().filter(|d| *d != "bridge") {
                anyhow::bail!(
                    "network {}: driver {driver:?} is not supported (only \"bridge\")",
                    n.key
                );
            }
        }
        Ok(())
    }

    /// Reads the project's objects on the host.
    pub fn observe(&self) -> anyhow::Result<ObservedState> {
        let images = self
            .desired
            .as_ref()
            .map(Desired::images)
            .unwrap_or_default();
        Ok(rcompose_reconciler::observe(
            &self.backend,
            &self.name,
            &images,
        )?)
    }

    /// Takes the project lock, waiting up to `timeout` (forever when `None`).
    pub fn lock(&self, timeout: Option<Duration>) -> anyhow::Result<ProjectLock> {
        let dir = self.host.root.join("projects");
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        Ok(ProjectLock::acquire(&dir, &self.name, timeout)?)
    }

    /// Every input file with its content, for the plan fingerprint.
    pub fn inputs(&self) -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
        let mut out = Vec::new();
        if let Some(l) = &self.loaded {
            for f in &l.files {
                let content = std::fs::read(f).with_context(|| format!("read {}", f.display()))?;
                out.push((f.clone(), content));
            }
        }
        Ok(out)
    }
}

/// `--lock-timeout` in seconds as a duration (negative: wait forever).
pub fn lock_timeout(seconds: Option<f64>) -> Option<Duration> {
    match seconds {
        Some(s) if s >= 0.0 => Some(Duration::from_secs_f64(s)),
        _ => None,
    }
}
