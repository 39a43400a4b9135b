//! `rcompose sync`: GitOps. The stack in a git repository is the source of
//! truth: fetch the ref, check the commit out in a directory of rcompose's
//! own, and reconcile the host to the stack file at `--path` in it, when the
//! files under that path's directory changed. A commit whose stack file
//! fails validation is refused and reported; the last good one keeps running.
//!
//! Git is driven through the `git` command (Debian's `git`): it speaks every
//! transport and credential helper the user's git is set up with, and adds
//! no build weight; see `docs/dependencies.md`.
//!
//! State under `<root>/sync/<repo-id>/` (`repo-id`: the first 16 hex digits
//! of the SHA-256 of the repository URL or path):
//!
//! ```text
//! repo/                 a clone without a working tree of its own (fetches land here)
//! commits/<commit>/     one worktree per commit checked out (the last 5 are kept)
//! state.json            { "applied": <commit>, "seen": <commit> }
//! ```

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use rcompose_reconciler::PlanOptions;
use rcompose_reconciler::apply::{self, ApplyOptions};
use rcompose_reconciler::history::Source;
use rcompose_reconciler::render;
use serde::{Deserialize, Serialize};

use crate::ProjectArgs;
use crate::host::HostArgs;
use crate::stack::{InvalidStack, Session};

/// Options of `sync`.
#[derive(Args, Debug, Clone)]
pub struct SyncArgs {
    /// Repository: a URL or a local path (a bare repository is fine).
    #[arg(long)]
    repo: String,
    /// Branch, tag or commit to follow.
    #[arg(long = "ref", default_value = "main")]
    reference: String,
    /// The stack file, relative to the repository's root.
    #[arg(long)]
    path: PathBuf,
    /// Seconds between fetches.
    #[arg(long, default_value_t = 60.0)]
    interval: f64,
    /// Remove containers of services no longer in the file.
    #[arg(long)]
    prune: bool,
    /// One fetch and reconcile, then exit (1 when the commit was refused or failed).
    #[arg(long)]
    once: bool,
    /// Operations run at once.
    #[arg(long, default_value_t = rcompose_reconciler::apply::DEFAULT_PARALLEL)]
    parallel: usize,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct SyncState {
    applied: Option<String>,
    seen: Option<String>,
}

/// Where one repository's clone and checkouts live.
pub struct SyncDir {
    dir: PathBuf,
}

impl SyncDir {
    /// The directory of `repo` under `root`.
    pub fn new(root: &Path, repo: &str) -> SyncDir {
        use sha2::Digest as _;
        let id = hex::encode(sha2::Sha256::digest(repo.as_bytes()));
        SyncDir {
            dir: root.join("sync").join(&id[..16]),
        }
    }

    fn repo(&self) -> PathBuf {
        self.dir.join("repo")
    }

    /// The checkout of `commit`.
    pub fn checkout(&self, commit: &str) -> PathBuf {
        self.dir.join("commits").join(commit)
    }

    fn state(&self) -> SyncState {
        std::fs::read(self.dir.join("state.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save(&self, state: &SyncState) -> anyhow::Result<()> {
        let path = self.dir.join("state.json");
        rcompose_reconciler::fsutil::write_json(&path, state)
            .with_context(|| format!("write {}", path.display()))
    }
}

/// Runs `git ARGS` in `dir`, returning its standard output.
fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .context("failed to run git (install Debian's git)")?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Fetches `reference` and returns the commit it points to.
fn fetch(dirs: &SyncDir, repo: &str, reference: &str) -> anyhow::Result<String> {
    let clone = dirs.repo();
    if !clone.join("HEAD").exists() {
        std::fs::create_dir_all(&dirs.dir)?;
        let tmp = dirs.dir.join("repo.tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        git(&dirs.dir, &["init", "--quiet", "--bare", "repo.tmp"])?;
        std::fs::rename(&tmp, &clone)?;
    }
    git(&clone, &["fetch", "--quiet", "--force", repo, reference])?;
    git(&clone, &["rev-parse", "FETCH_HEAD^{commit}"])
}

/// Checks `commit` out in its own directory (kept as it is when present).
fn check_out(dirs: &SyncDir, commit: &str) -> anyhow::Result<PathBuf> {
    let target = dirs.checkout(commit);
    if !target.exists() {
        std::fs::create_dir_all(target.parent().unwrap_or(&dirs.dir))?;
        let target_text = target.display().to_string();
        git(
            &dirs.repo(),
            &[
                "worktree",
                "add",
                "--quiet",
                "--detach",
                "--force",
                &target_text,
                commit,
            ],
        )?;
    }
    Ok(target)
}

/// Removes checkouts but the newest `keep` and those in `pinned`.
fn prune_checkouts(dirs: &SyncDir, keep: usize, pinned: &[&str]) {
    let Ok(entries) = std::fs::read_dir(dirs.dir.join("commits")) else {
        return;
    };
    let mut all: Vec<(std::time::SystemTime, PathBuf, String)> = entries
        .flatten()
        .filter_map(|e| {
            let modified = e.metadata().and_then(|m| m.modified()).ok()?;
            Some((
                modified,
                e.path(),
                e.file_name().to_string_lossy().into_owned(),
            ))
        })
        .collect();
    all.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (_, path, name) in all.into_iter().skip(keep) {
        if !pinned.contains(&name.as_str()) {
            let text = path.display().to_string();
            let _ = git(&dirs.repo(), &["worktree", "remove", "--force", &text]);
        }
    }
}

/// What one cycle did.
enum Outcome {
    Unchanged,
    Applied(String),
    Refused(String),
}

/// One fetch → compare → load → plan → apply cycle.
fn cycle(project: &ProjectArgs, host: &HostArgs, args: &SyncArgs) -> anyhow::Result<Outcome> {
    let dirs = SyncDir::new(&host.root, &args.repo);
    let commit = fetch(&dirs, &args.repo, &args.reference)?;
    let mut state = dirs.state();
    let short = &commit[..commit.len().min(12)];
    let dir_in_repo = args
        .path
        .parent()
        .unwrap_or(Path::new(""))
        .display()
        .to_string();
    let scope = if dir_in_repo.is_empty() {
        ".".to_string()
    } else {
        dir_in_repo
    };
    if let Some(applied) = &state.applied {
        let same = applied == &commit
            || git(
                &dirs.repo(),
                &["diff", "--quiet", applied, &commit, "--", &scope],
            )
            .is_ok();
        if same {
            state.seen = Some(commit.clone());
            dirs.save(&state)?;
            return Ok(Outcome::Unchanged);
        }
    }
    let checkout = check_out(&dirs, &commit)?;
    let mut args_here = project.clone();
    args_here.files = vec![checkout.join(&args.path)];
    args_here.project_directory = None;
    let mut session = match Session::open(&args_here, host, true, Vec::new()) {
        Ok(s) => s,
        Err(e) => {
            let invalid = e.downcast::<InvalidStack>()?;
            eprintln!("{}", invalid.0);
            state.seen = Some(commit.clone());
            dirs.save(&state)?;
            return Ok(Outcome::Refused(format!(
                "commit {short} refused: its stack file is invalid (errors above); the last good commit keeps running"
            )));
        }
    };
    let label = crate::stack::backend::LABEL_GIT_COMMIT.to_string();
    session
        .backend
        .set_extra_labels([(label, commit.clone())].into());
    if let Err(e) = session.check_supported() {
        return Ok(Outcome::Refused(format!("commit {short} refused: {e:#}")));
    }
    let _lock = session.lock(None)?;
    let desired = session.desired()?;
    let observed = session.observe()?;
    let options = PlanOptions {
        remove_orphans: args.prune,
        ..PlanOptions::default()
    };
    let plan = rcompose_reconciler::plan(desired, &observed, &options);
    println!("commit {short}: plan");
    print!(
        "{}",
        render::render_human(&plan, std::io::stdout().is_terminal())
    );
    if !plan.is_empty() {
        let apply_options = ApplyOptions {
            parallel: args.parallel,
            ..ApplyOptions::default()
        };
        let report = apply::apply(&session.backend, &plan, &apply_options, &|_| {});
        if !report.ok() {
            bail!(
                "commit {short}: apply failed: {}",
                report.render_text().trim_end()
            );
        }
    }
    let source = Source::Git {
        repo: args.repo.clone(),
        reference: args.reference.clone(),
        commit: commit.clone(),
        path: args.path.display().to_string(),
    };
    let number = crate::history::record(&session, host, &format!("sync {short}"), source)?;
    state.applied = Some(commit.clone());
    state.seen = Some(commit.clone());
    dirs.save(&state)?;
    prune_checkouts(&dirs, 5, &[commit.as_str()]);
    Ok(Outcome::Applied(format!(
        "commit {short} applied (revision {number})"
    )))
}

/// `rcompose sync`.
pub fn sync(project: &ProjectArgs, host: &HostArgs, args: &SyncArgs) -> anyhow::Result<ExitCode> {
    loop {
        let result = cycle(project, host, args);
        let failed = match &result {
            Ok(Outcome::Unchanged) => {
                println!("up to date with {}", args.reference);
                false
            }
            Ok(Outcome::Applied(message)) => {
                println!("{message}");
                false
            }
            Ok(Outcome::Refused(message)) => {
                eprintln!("{message}");
                true
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                true
            }
        };
        if args.once {
            return Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            });
        }
        std::thread::sleep(Duration::from_secs_f64(args.interval.max(1.0)));
    }
}
