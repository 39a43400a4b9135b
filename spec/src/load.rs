//! Loading a project the way `docker compose` does: find the files, build the
//! environment, read and interpolate each file, merge them, then hand the merged
//! tree to `extends`, `include`, validation and normalization.
//!
//! This module reads only the stack files, `.env` / env files and the files they
//! name; the process environment is passed in ([`LoadOptions::environment`]) so
//! that loading is deterministic and testable.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::diag::{Diagnostic, Diagnostics};
use crate::yaml::{self, Node, Pos, Value};
use crate::{dotenv, interpolate, merge};

/// File names tried, in order, when no `-f` and no `COMPOSE_FILE` is given.
pub const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// What the command line and the process give the loader.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `-f` files, in order; empty means `COMPOSE_FILE` or discovery.
    pub files: Vec<PathBuf>,
    /// `--project-directory`.
    pub project_directory: Option<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--env-file`, in order; empty means `<project dir>/.env` when it exists.
    pub env_files: Vec<PathBuf>,
    /// `--profile`, added to `COMPOSE_PROFILES`.
    pub profiles: Vec<String>,
    /// The process environment.
    pub environment: IndexMap<String, String>,
    /// Directory that relative `-f` paths and discovery start from.
    pub working_dir: PathBuf,
    /// Where to remember documents that passed the schema, so that loading
    /// the same document again skips that check (`None`: always check).
    pub schema_cache: Option<PathBuf>,
}

/// Why a project could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No `-f`, no `COMPOSE_FILE` and no default file in the directory.
    #[error("no stack file found in {dir}: looked for {}", DEFAULT_FILES.join(", "))]
    NoStackFile {
        /// Where we looked.
        dir: PathBuf,
    },
    /// A file could not be read.
    #[error("failed to read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The stack files have errors; every one found is listed.
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// The merged, interpolated document and what the loader learnt on the way.
#[derive(Debug)]
pub struct RawProject {
    /// Merged document of every file.
    pub doc: Node,
    /// Directory relative paths resolve against.
    pub project_dir: PathBuf,
    /// The files, in merge order.
    pub files: Vec<PathBuf>,
    /// The interpolation environment: env files overlaid by the process environment.
    pub env: IndexMap<String, String>,
    /// Project name from `-p` / `COMPOSE_PROJECT_NAME`, when given.
    pub name_override: Option<String>,
    /// Active profiles.
    pub profiles: Vec<String>,
    /// Warnings (obsolete keys and the like).
    pub warnings: Vec<String>,
}

/// Read and merge the stack files of `opts` (no typing or validation yet).
pub fn read_project(opts: &LoadOptions) -> Result<RawProject, LoadError> {
    let base_dir = opts
        .project_directory
        .as_ref()
        .map(|d| absolute(&opts.working_dir, d))
        .unwrap_or_else(|| opts.working_dir.clone());
    let env = environment(opts, &base_dir)?;
    let files = stack_files(opts, &env)?;
    let project_dir = match &opts.project_directory {
        Some(_) => base_dir,
        None => files[0].parent().map(Path::to_path_buf).unwrap_or(base_dir),
    };
    let mut diags = Vec::new();
    let mut warnings = Vec::new();
    let doc = read_and_merge(&files, &env, &mut diags, &mut warnings)?;
    if !diags.is_empty() {
        return Err(LoadError::Invalid(Diagnostics(diags).sorted()));
    }
    Ok(RawProject {
        doc,
        project_dir,
        files,
        name_override: opts
            .project_name
            .clone()
            .or_else(|| env.get("COMPOSE_PROJECT_NAME").cloned())
            .filter(|n| !n.is_empty()),
        profiles: active_profiles(opts, &env),
        env,
        warnings,
    })
}

fn absolute(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Env files (`--env-file`, else `.env` in the project directory) under the process
/// environment, which wins.
fn environment(opts: &LoadOptions, dir: &Path) -> Result<IndexMap<String, String>, LoadError> {
    let explicit = !opts.env_files.is_empty();
    let files: Vec<PathBuf> = if explicit {
        opts.env_files
            .iter()
            .map(|f| absolute(&opts.working_dir, f))
            .collect()
    } else {
        vec![dir.join(".env")]
    };
    let mut env: IndexMap<String, String> = IndexMap::new();
    for file in files {
        if !explicit && !file.exists() {
            continue;
        }
        let vars = read_env_file(&file, &|k| {
            opts.environment.get(k).or_else(|| env.get(k)).cloned()
        })?;
        for (k, v) in vars {
            if let Some(v) = v.or_else(|| opts.environment.get(&k).cloned()) {
                env.insert(k, v);
            }
        }
    }
    env.extend(opts.environment.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(env)
}

/// Read one env file; its syntax errors are reported as stack-file errors.
pub fn read_env_file(
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<IndexMap<String, Option<String>>, LoadError> {
    let text = read(path)?;
    dotenv::parse_env_file(&path.display().to_string(), &text, lookup).map_err(|e| {
        LoadError::Invalid(Diagnostics(vec![Diagnostic {
            pos: None,
            path: String::new(),
            message: crate::diag::error_chain(&e),
            hint: None,
        }]))
    })
}

fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn stack_files(
    opts: &LoadOptions,
    env: &IndexMap<String, String>,
) -> Result<Vec<PathBuf>, LoadError> {
    if !opts.files.is_empty() {
        return Ok(opts
            .files
            .iter()
            .map(|f| absolute(&opts.working_dir, f))
            .collect());
    }
    if let Some(list) = env.get("COMPOSE_FILE").filter(|l| !l.is_empty()) {
        let sep = env
            .get("COMPOSE_PATH_SEPARATOR")
            .map(String::as_str)
            .unwrap_or(":");
        return Ok(list
            .split(sep)
            .filter(|f| !f.is_empty())
            .map(|f| absolute(&opts.working_dir, Path::new(f)))
            .collect());
    }
    let dir = opts
        .project_directory
        .as_ref()
        .map(|d| absolute(&opts.working_dir, d))
        .unwrap_or_else(|| opts.working_dir.clone());
    for name in DEFAULT_FILES {
        let file = dir.join(name);
        if file.is_file() {
            let (stem, ext) = name.rsplit_once('.').unwrap_or((name, "yml"));
            let over = dir.join(format!("{stem}.override.{ext}"));
            return Ok(if over.is_file() {
                vec![file, over]
            } else {
                vec![file]
            });
        }
    }
    Err(LoadError::NoStackFile { dir })
}

fn active_profiles(opts: &LoadOptions, env: &IndexMap<String, String>) -> Vec<String> {
    let mut profiles: Vec<String> = env
        .get("COMPOSE_PROFILES")
        .map(|p| {
            p.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    for p in &opts.profiles {
        if !profiles.contains(p) {
            profiles.push(p.clone());
        }
    }
    profiles
}

/// Parse and interpolate each file (each on its own, as Compose does), then merge
/// them in order. Syntax errors stop at the file; interpolation errors are collected.
pub fn read_and_merge(
    files: &[PathBuf],
    env: &IndexMap<String, String>,
    diags: &mut Vec<Diagnostic>,
    warnings: &mut Vec<String>,
) -> Result<Node, LoadError> {
    let mut merged: Option<Node> = None;
    for file in files {
        let Some(doc) = read_document(file, env, diags)? else {
            continue;
        };
        if let Some(v) = doc.get("version") {
            warnings.push(format!(
                "{}: the top-level `version` is obsolete and ignored",
                v.key_pos.as_ref().unwrap_or(&v.pos)
            ));
        }
        merged = Some(match merged {
            None => {
                let mut doc = doc;
                merge::strip_resets(&mut doc);
                doc
            }
            Some(base) => merge::merge(base, doc),
        });
    }
    Ok(merged.unwrap_or_else(|| empty_doc(files)))
}

fn empty_doc(files: &[PathBuf]) -> Node {
    let what = files
        .first()
        .map(|f| f.display().to_string())
        .unwrap_or_default();
    Node::new(Value::Map(IndexMap::new()), Pos::synthetic(&what))
}

/// One file: parsed, documents merged, interpolated. `None` for an empty file.
pub fn read_document(
    file: &Path,
    env: &IndexMap<String, String>,
    diags: &mut Vec<Diagnostic>,
) -> Result<Option<Node>, LoadError> {
    let text = read(file)?;
    let shown = file.display().to_string();
    let docs = match yaml::parse(&shown, &text) {
        Ok(docs) => docs,
        Err(e) => {
            diags.push(Diagnostic::at(&e.pos, "", e.message));
            return Ok(None);
        }
    };
    let mut doc: Option<Node> = None;
    for mut d in docs {
        if d.is_null() {
            continue;
        }
        if d.as_map().is_none() {
            diags.push(Diagnostic::at(
                &d.pos,
                "",
                "a stack file must be a mapping at the top level",
            ));
            continue;
        }
        let mut errs = Vec::new();
        interpolate::interpolate_node(&mut d, &mut Vec::new(), &|k| env.get(k).cloned(), &mut errs);
        diags.extend(errs.into_iter().map(interpolate_diag));
        doc = Some(match doc {
            None => d,
            Some(base) => merge::merge(base, d),
        });
    }
    Ok(doc)
}

fn interpolate_diag(e: interpolate::InterpolateDiag) -> Diagnostic {
    Diagnostic::at(&e.pos, e.path, e.error.to_string())
}
