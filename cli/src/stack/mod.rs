//! The stack commands: `up`, `plan`, `apply`, `down`, `ps` and the other
//! commands that act on a project's services, with the real host behind the
//! reconciler's backend traits.

pub mod backend;
mod down;
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
pub use services::{ServiceCommand, run_service_command};
pub use up::{ApplyArgs, PlanArgs, UpArgs, apply_file, plan, up};

use crate::ProjectArgs;
use crate::host::HostArgs;
use backend::HostBackend;

/// A stack file that did not load: its diagnostics were printed already.
#[derive(Debug)]
pub struct InvalidStack;

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
    host: HostArgs,
}

impl Session {
    /// Loads the stack (every error in it printed with file:line:col) and
    /// wires the host. With `require_file: false`, a missing stack file is
    /// not an error: the project is the one `-p` or the directory names.
    pub fn open(
        project: &ProjectArgs,
        host: &HostArgs,
        require_file: bool,
        insecure_registries: Vec<String>,
    ) -> anyhow::Result<Session> {
        let opts = project.load_options()?;
        let loaded = match rcompose_spec::load(&opts) {
            Ok(l) => Some(l),
            Err(LoadError::Invalid(diags)) => {
                eprintln!("{diags}");
                return Err(InvalidStack.into());
            }
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
        let desired = loaded.as_ref().map(|l| Desired::from_project(&l.project));
        let backend = HostBackend::new(
            host,
            &name,
            loaded.as_ref().map(|l| l.project.clone()),
            dir,
            opts.environment.clone().into_iter().collect(),
            insecure_registries,
        )?;
        Ok(Session {
            name,
            loaded,
            desired,
            backend,
            host: host.clone(),
        })
    }

    /// The desired state; an error when no stack file was found.
    pub fn desired(&self) -> anyhow::Result<&Desired> {
        self.desired
            .as_ref()
            .context("no stack file found (use -f FILE)")
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
