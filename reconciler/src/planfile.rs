//! A saved plan (`rcompose plan -out plan.json`, then `rcompose apply
//! plan.json`), with what it takes to refuse a stale one the way Terraform
//! does: fingerprints of the host and of the stack files the plan was made
//! from.
//!
//! On-disk layout: one pretty-printed JSON file wherever the user asks,
//! written atomically ([`crate::fsutil::write_json`]):
//!
//! ```text
//! { "schema_version": 1, "project": "shop", "created": "2026-11-22T10:00:00Z",
//!   "fingerprint": { "observed": "<sha256 hex>", "inputs": "<sha256 hex>" },
//!   "options": { …the CLI's flags, opaque here… }, "plan": { "ops": […], "warnings": […] } }
//! ```
//!
//! Invariants: a file of another schema version is refused before its plan
//! is read; a plan is applied only while the project, the host and the stack
//! files are what they were when it was made ([`PlanFile::check`]).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backend::ObservedState;
use crate::fsutil;
use crate::plan::Plan;

/// Version of the plan-file format this build reads and writes.
pub const PLAN_FILE_SCHEMA_VERSION: u32 = 1;

/// What the plan was made from, to tell whether it is still valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// [`fingerprint_observed`] of the host when the plan was made.
    pub observed: String,
    /// [`fingerprint_inputs`] of the stack files the plan was made from.
    pub inputs: String,
}

/// A plan saved for a later `apply`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFile {
    /// Format version ([`PLAN_FILE_SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// Project the plan is for.
    pub project: String,
    /// When the plan was made, RFC 3339 in UTC (`2026-11-22T10:00:00Z`).
    pub created: String,
    /// What the plan was made from.
    pub fingerprint: Fingerprint,
    /// The CLI's flags, stored and given back as they are.
    pub options: serde_json::Value,
    /// The plan.
    pub plan: Plan,
}

/// Why a plan file could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    /// Reading the file failed.
    #[error("failed to read plan file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing the file failed.
    #[error("failed to write plan file {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not JSON, or not a plan file.
    #[error("{path} is not a plan file")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// The file has no `schema_version`: not a plan file.
    #[error("{path} is not a plan file (it has no schema_version)")]
    NoVersion {
        /// The file.
        path: PathBuf,
    },
    /// The file was written in a format this build does not read.
    #[error(
        "plan file {path} has schema version {found}, this rcompose reads version {supported}; make the plan again with this rcompose"
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u64,
        /// The version this build reads.
        supported: u32,
    },
}

/// Why a saved plan may no longer be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StaleError {
    /// The plan was made for another project.
    #[error("the plan is for project {planned}, not {current}")]
    Project {
        /// Project of the plan.
        planned: String,
        /// Project being applied.
        current: String,
    },
    /// The stack files (or files they read) changed.
    #[error("the stack files changed since the plan was made; make a new plan")]
    Inputs,
    /// Something of the project on the host changed.
    #[error("the host changed since the plan was made; make a new plan")]
    Host,
}

impl PlanFile {
    /// A plan file for `project` made now.
    pub fn new(
        project: &str,
        fingerprint: Fingerprint,
        options: serde_json::Value,
        plan: Plan,
    ) -> Self {
        Self {
            schema_version: PLAN_FILE_SCHEMA_VERSION,
            project: project.to_string(),
            created: rfc3339(SystemTime::now()),
            fingerprint,
            options,
            plan,
        }
    }

    /// Writes the file atomically (temp file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<(), PlanFileError> {
        fsutil::write_json(path, self).map_err(|source| PlanFileError::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads a plan file, refusing one of another schema version.
    pub fn load(path: &Path) -> Result<Self, PlanFileError> {
        let bytes = std::fs::read(path).map_err(|source| PlanFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let parse = |source| PlanFileError::Parse {
            path: path.to_path_buf(),
            source,
        };
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(parse)?;
        let Some(found) = value.get("schema_version").and_then(|v| v.as_u64()) else {
            return Err(PlanFileError::NoVersion {
                path: path.to_path_buf(),
            });
        };
        if found != u64::from(PLAN_FILE_SCHEMA_VERSION) {
            return Err(PlanFileError::Version {
                path: path.to_path_buf(),
                found,
                supported: PLAN_FILE_SCHEMA_VERSION,
            });
        }
        serde_json::from_value(value).map_err(parse)
    }

    /// `Ok` when the plan may be applied to `project` on a host whose
    /// fingerprint is `observed_now`, from stack files whose fingerprint is
    /// `inputs_now`.
    pub fn check(
        &self,
        project: &str,
        observed_now: &str,
        inputs_now: &str,
    ) -> Result<(), StaleError> {
        if self.project != project {
            return Err(StaleError::Project {
                planned: self.project.clone(),
                current: project.to_string(),
            });
        }
        if self.fingerprint.inputs != inputs_now {
            return Err(StaleError::Inputs);
        }
        if self.fingerprint.observed != observed_now {
            return Err(StaleError::Host);
        }
        Ok(())
    }
}

/// SHA-256 (hex) over canonical JSON of what the planner reads of the host.
///
/// Container health is left out: it changes on its own (a start period
/// ending) while nothing the plan acts on does, and would make every plan of
/// a project with healthchecks stale within seconds.
pub fn fingerprint_observed(observed: &ObservedState) -> String {
    let mut value = serde_json::to_value(observed).unwrap_or_default();
    if let Some(containers) = value.get_mut("containers").and_then(|c| c.as_array_mut()) {
        for container in containers.iter_mut().filter_map(|c| c.as_object_mut()) {
            container.remove("health");
        }
    }
    let mut text = String::new();
    rcompose_spec::project::canonical_json(&value, &mut text);
    hex(&Sha256::digest(text.as_bytes()))
}

/// SHA-256 (hex) over the path and content of every input file, in order.
/// Each part is length-prefixed, so moving bytes between a path and a
/// content, or between two files, changes the result.
pub fn fingerprint_inputs(files: &[(PathBuf, Vec<u8>)]) -> String {
    let mut hasher = Sha256::new();
    for (path, content) in files {
        let path = path.to_string_lossy();
        for part in [path.as_bytes(), content.as_slice()] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `time` as RFC 3339 in UTC with whole seconds (`2026-11-22T10:00:00Z`).
fn rfc3339(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_date(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Gregorian `(year, month, day)` of `days` (≥ 0) after 1970-01-01: whole
/// years off first, then whole months.
fn civil_date(mut days: i64) -> (i64, i64, i64) {
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mut year = 1970;
    while days >= if leap(year) { 366 } else { 365 } {
        days -= if leap(year) { 366 } else { 365 };
        year += 1;
    }
    let february = if leap(year) { 29 } else { 28 };
    let lengths = [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut month = 1;
    for length in lengths {
        if days < length {
            break;
        }
        days -= length;
        month += 1;
    }
    (year, month, days + 1)
}

#[cfg(test)]
mod tests;
