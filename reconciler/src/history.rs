//! The history of a project: one revision per successful apply that
//! changed what the project is, so that `rcompose history` can show what
//! ran when, from which source and why, and a rollback can find an earlier
//! project again.
//!
//! On-disk layout, under the state root (`--root`, `/var/lib/rcompose`):
//!
//! ```text
//! <root>/projects/<project>/history/
//!   .lock          advisory lock held while a revision is numbered and written
//!   000001.json    one Revision per file, pretty JSON, written atomically
//!   000002.json    (number, time, trigger, source, project, images, inputs)
//!   …
//! ```
//!
//! A revision file holds `{"number": 2, "time": "2026-11-22T10:00:00Z",
//! "trigger": "files: compose.yaml", "source": {"kind": "file", "path":
//! "compose.yaml"}, "project": {…the normalized project…}, "images":
//! {"nginx:1.27": "sha256:…"}, "inputs": {"compose.yaml": "sha256:…"}}`.
//!
//! Invariants: numbers start at 1, grow by one per recorded revision and
//! are never reused — pruning ([`History::keep`]) never removes the latest
//! revision, so the next number is always known; file names are the number
//! zero-padded to six digits (wider past 999 999), and anything else in the
//! directory (the lock, temp files of an interrupted write) is ignored; a
//! revision whose project, images and source equal the latest one's is not
//! recorded, so passes that change nothing do not fill the history.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fsutil;

/// Revisions kept when [`History::keeping`] does not say otherwise.
pub const DEFAULT_KEEP: usize = 50;

/// Where the stack files of a revision came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// Local stack files.
    File {
        /// The (first) stack file, as the user named it.
        path: String,
    },
    /// A stack file in a git repository (`rcompose sync`).
    Git {
        /// Repository URL.
        repo: String,
        /// Branch or tag followed.
        reference: String,
        /// Commit the files were read at.
        commit: String,
        /// Path of the stack file inside the repository.
        path: String,
    },
}

impl fmt::Display for Source {
    /// `compose.yaml`, or `https://…/stacks.git@main (0123456789ab) shop/compose.yaml`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File { path } => f.write_str(path),
            Self::Git {
                repo,
                reference,
                commit,
                path,
            } => {
                let short = commit.get(..12).unwrap_or(commit);
                write!(f, "{repo}@{reference} ({short}) {path}")
            }
        }
    }
}

/// One recorded apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    /// Revision number, from 1.
    pub number: u64,
    /// When it was recorded, RFC 3339 in UTC (`2026-11-22T10:00:00Z`).
    pub time: String,
    /// What started the pass that applied it (`files: compose.yaml`).
    pub trigger: String,
    /// Where its stack files came from.
    pub source: Source,
    /// The normalized project, as JSON.
    pub project: serde_json::Value,
    /// Image reference → digest it ran with (`None`: not known).
    pub images: BTreeMap<String, Option<String>>,
    /// Input file path → `sha256:<hex>` of its content ([`input_digests`]).
    pub inputs: BTreeMap<String, String>,
}

/// What the caller knows of a revision to record; [`History::record`]
/// adds the number and the time.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRevision {
    /// What started the pass (`files: compose.yaml`).
    pub trigger: String,
    /// Where its stack files came from.
    pub source: Source,
    /// The normalized project, as JSON.
    pub project: serde_json::Value,
    /// Image reference → digest.
    pub images: BTreeMap<String, Option<String>>,
    /// Input file path → `sha256:<hex>`.
    pub inputs: BTreeMap<String, String>,
}

/// A revision without its project body, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionSummary {
    /// Revision number.
    pub number: u64,
    /// When it was recorded (RFC 3339, UTC).
    pub time: String,
    /// What started the pass.
    pub trigger: String,
    /// Where its stack files came from.
    pub source: Source,
}

/// Why the history could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The history directory could not be created or listed.
    #[error("failed to read history directory {dir}")]
    Dir {
        /// The history directory.
        dir: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The history lock could not be taken.
    #[error("failed to lock history {path}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// A revision file could not be read or parsed.
    #[error("failed to read revision {path}")]
    Read {
        /// The revision file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// A revision file could not be written.
    #[error("failed to write revision {path}")]
    Write {
        /// The revision file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// A revision file could not be removed while pruning.
    #[error("failed to remove revision {path}")]
    Remove {
        /// The revision file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

/// The revisions of one project (see the module comment for the layout).
#[derive(Debug, Clone)]
pub struct History {
    dir: PathBuf,
    keep: usize,
}

impl History {
    /// The history of `project` under the state root `root`; nothing is
    /// created until the first revision is recorded.
    pub fn new(root: &Path, project: &str) -> Self {
        Self {
            dir: root.join("projects").join(project).join("history"),
            keep: DEFAULT_KEEP,
        }
    }

    /// Keeps the last `n` revisions (at least 1) after each
    /// [`Self::record`] instead of [`DEFAULT_KEEP`].
    pub fn keeping(mut self, n: usize) -> Self {
        self.keep = n.max(1);
        self
    }

    /// The history directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records `rev` as the next revision and prunes to the configured
    /// number kept (a pruning failure is logged, not returned: the revision
    /// is safely written by then). When `rev`'s project, images and source
    /// equal the latest revision's, nothing is written and the latest
    /// revision is returned as it is (its number is then not new).
    pub fn record(&self, rev: NewRevision) -> Result<Revision, HistoryError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| HistoryError::Dir {
            dir: self.dir.clone(),
            source,
        })?;
        let lock_path = self.dir.join(".lock");
        let _lock = fsutil::lock(&lock_path).map_err(|source| HistoryError::Lock {
            path: lock_path.clone(),
            source,
        })?;
        let latest = self.latest()?;
        if let Some(latest) = latest.as_ref().filter(|l| same_content(l, &rev)) {
            return Ok(latest.clone());
        }
        let revision = Revision {
            number: latest.map_or(1, |l| l.number + 1),
            time: rfc3339(SystemTime::now()),
            trigger: rev.trigger,
            source: rev.source,
            project: rev.project,
            images: rev.images,
            inputs: rev.inputs,
        };
        let path = self.path(revision.number);
        fsutil::write_json(&path, &revision)
            .map_err(|source| HistoryError::Write { path, source })?;
        if let Err(error) = self.keep(self.keep) {
            tracing::warn!(error = %error, dir = %self.dir.display(), "failed to prune history");
        }
        Ok(revision)
    }

    /// Every revision kept, oldest first, without project bodies. A
    /// revision pruned while the list is read is left out.
    pub fn list(&self) -> Result<Vec<RevisionSummary>, HistoryError> {
        let mut summaries = Vec::new();
        for number in self.numbers()? {
            match self.read::<RevisionSummary>(number) {
                Ok(summary) => summaries.push(summary),
                Err(HistoryError::Read { source, .. })
                    if source.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(summaries)
    }

    /// Revision `number`; `None` when it was never recorded or was pruned.
    pub fn get(&self, number: u64) -> Result<Option<Revision>, HistoryError> {
        match self.read(number) {
            Ok(rev) => Ok(Some(rev)),
            Err(HistoryError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The latest revision; `None` before the first one.
    pub fn latest(&self) -> Result<Option<Revision>, HistoryError> {
        match self.numbers()?.last() {
            Some(&n) => self.read(n).map(Some),
            None => Ok(None),
        }
    }

    /// Removes all but the last `n` revisions (at least the latest one is
    /// kept, so numbers are never reused); returns how many were removed.
    pub fn keep(&self, n: usize) -> Result<usize, HistoryError> {
        let numbers = self.numbers()?;
        let excess = numbers.len().saturating_sub(n.max(1));
        for &number in &numbers[..excess] {
            let path = self.path(number);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(HistoryError::Remove { path, source: e });
                }
                _ => {}
            }
        }
        Ok(excess)
    }

    /// Numbers of the revision files present, ascending.
    fn numbers(&self) -> Result<Vec<u64>, HistoryError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(HistoryError::Dir {
                    dir: self.dir.clone(),
                    source,
                });
            }
        };
        let mut numbers = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| HistoryError::Dir {
                dir: self.dir.clone(),
                source,
            })?;
            numbers.extend(entry.file_name().to_str().and_then(revision_number));
        }
        numbers.sort_unstable();
        Ok(numbers)
    }

    fn path(&self, number: u64) -> PathBuf {
        self.dir.join(format!("{number:06}.json"))
    }

    /// Reads revision file `number` as `T` (a whole revision or its summary).
    fn read<T: serde::de::DeserializeOwned>(&self, number: u64) -> Result<T, HistoryError> {
        let path = self.path(number);
        match fsutil::read_json(&path) {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(HistoryError::Read {
                path,
                source: io::ErrorKind::NotFound.into(),
            }),
            Err(source) => Err(HistoryError::Read { path, source }),
        }
    }
}

/// The number of a revision file name (`000012.json` → 12); `None` for
/// anything else.
fn revision_number(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".json")?;
    let all_digits = digits.len() >= 6 && digits.bytes().all(|b| b.is_ascii_digit());
    all_digits.then(|| digits.parse().ok()).flatten()
}

/// Whether recording `new` after `latest` would record nothing new.
fn same_content(latest: &Revision, new: &NewRevision) -> bool {
    latest.project == new.project && latest.images == new.images && latest.source == new.source
}

/// Path → `sha256:<hex>` of each input file, for [`Revision::inputs`]
/// (the same `(path, content)` pairs [`crate::fingerprint_inputs`] takes).
pub fn input_digests(files: &[(PathBuf, Vec<u8>)]) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(path, content)| {
            let digest: String = Sha256::digest(content)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            (path.display().to_string(), format!("sha256:{digest}"))
        })
        .collect()
}

/// `time` as RFC 3339 in UTC with whole seconds (`2026-11-22T10:00:00Z`);
/// times before 1970 read as 1970-01-01T00:00:00Z.
pub fn rfc3339(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = date_of_day(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Gregorian `(year, month, day)` of the `days`th day after 1970-01-01.
///
/// Counts in 400-year cycles (146 097 days each) of years that start on
/// 1 March, so that the leap day is the last day of its year and month
/// lengths from March on follow a fixed 153-days-per-5-months pattern.
fn date_of_day(days: u64) -> (u64, u64, u64) {
    // 1970-01-01 is day 719 468 counted from 0000-03-01.
    let day = days + 719_468;
    let (cycle, day_of_cycle) = (day / 146_097, day % 146_097);
    let year_of_cycle =
        (day_of_cycle - day_of_cycle / 1460 + day_of_cycle / 36_524 - day_of_cycle / 146_096) / 365;
    let day_of_year =
        day_of_cycle - (365 * year_of_cycle + year_of_cycle / 4 - year_of_cycle / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day_of_month = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = cycle * 400 + year_of_cycle + u64::from(month <= 2);
    (year, month, day_of_month)
}

#[cfg(test)]
mod tests;
