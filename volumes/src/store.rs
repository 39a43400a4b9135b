//! Where volumes and per-container secret files live, and the volume record.
//!
//! Layout (records written atomically):
//!
//! ```text
//! <state>/                        e.g. /var/lib/rcompose/volumes
//!   .lock                         held while a volume is created or removed
//!   <name>/volume.json            VolumeRecord; the volume exists iff this file does
//!   <name>/_data/                 the content, mounted into containers; for a volume
//!                                 with driver_opts, the mount point of its tmpfs or bind
//!   .removing-<name>/             a volume being deleted (renamed first, so a crash
//!                                 never leaves a half-deleted volume under its name)
//! <run>/                          e.g. /run/rcompose/volumes
//!   secrets/<container-id>/       tmpfs (mode 0700) with one container's files:
//!     configs/<index>-<name>      bind-mounted read-only at the config's target
//!     secrets/<index>-<name>      bind-mounted read-only at the secret's target
//! ```
//!
//! Volume names follow Docker's rule `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, so they can
//! never be `.lock`, a `.removing-` entry, or climb out of `<state>`.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rcompose_reconciler::fsutil;
use serde::{Deserialize, Serialize};

/// Label marking an anonymous volume (`- /data` in a service).
pub const LABEL_ANONYMOUS: &str = "io.rcompose.anonymous";
/// The label Docker puts on anonymous volumes, for tools that read it.
pub const LABEL_DOCKER_ANONYMOUS: &str = "com.docker.volume.anonymous";
/// Label naming the project a volume belongs to.
pub const LABEL_PROJECT: &str = "io.rcompose.project";
/// Label naming the container an anonymous volume was made for.
pub const LABEL_CONTAINER: &str = "io.rcompose.container";
/// Label of an anonymous volume: the path it is mounted at in its container.
pub const LABEL_TARGET: &str = "io.rcompose.target";

/// The two roots of the volume state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumePaths {
    /// Persistent state: volume records and data.
    pub state: PathBuf,
    /// Runtime state: secret tmpfs mounts; gone after a reboot.
    pub run: PathBuf,
}

impl VolumePaths {
    /// `<root>/volumes` and `<run_dir>/volumes`.
    pub fn new(root: &Path, run_dir: &Path) -> VolumePaths {
        VolumePaths {
            state: root.join("volumes"),
            run: run_dir.join("volumes"),
        }
    }

    /// The lock file.
    pub fn lock(&self) -> PathBuf {
        self.state.join(".lock")
    }

    /// A volume's directory.
    pub fn volume_dir(&self, name: &str) -> PathBuf {
        self.state.join(name)
    }

    /// A volume's record.
    pub fn record(&self, name: &str) -> PathBuf {
        self.volume_dir(name).join("volume.json")
    }

    /// A volume's content directory (its mount point).
    pub fn data(&self, name: &str) -> PathBuf {
        self.volume_dir(name).join("_data")
    }

    /// Where a volume's directory is moved while it is deleted.
    pub fn removing(&self, name: &str) -> PathBuf {
        self.state.join(format!(".removing-{name}"))
    }

    /// The tmpfs holding a container's configs and secrets.
    pub fn secrets_dir(&self, container_id: &str) -> PathBuf {
        self.run.join("secrets").join(container_id)
    }

    /// One volume's record, with `mountpoint` set to where it is now.
    pub fn read_record(&self, name: &str) -> io::Result<Option<VolumeRecord>> {
        let record = fsutil::read_json::<VolumeRecord>(&self.record(name))?;
        Ok(record.map(|r| VolumeRecord {
            mountpoint: self.data(name),
            ..r
        }))
    }

    /// Names of the volumes stored, sorted, without reading their records.
    pub fn names(&self) -> io::Result<Vec<String>> {
        let mut names = volume_dirs(&self.state)?;
        names.sort();
        Ok(names)
    }

    /// Every record, sorted by name.
    pub fn records(&self) -> io::Result<Vec<VolumeRecord>> {
        let mut out = Vec::new();
        for name in volume_dirs(&self.state)? {
            out.extend(self.read_record(&name)?);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// A volume as `volume inspect` shows it; stored as `volume.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    /// Volume name.
    pub name: String,
    /// Driver that created it (`local`).
    pub driver: String,
    /// Labels given at creation.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Driver options given at creation (`type`, `device`, `o`).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Creation time, RFC 3339 in UTC.
    pub created: String,
    /// Host path of the content (`<state>/<name>/_data`).
    pub mountpoint: PathBuf,
}

impl VolumeRecord {
    /// Whether the volume was created for an anonymous mount.
    pub fn is_anonymous(&self) -> bool {
        self.labels.get(LABEL_ANONYMOUS).map(String::as_str) == Some("true")
    }

    /// The project the volume belongs to, from its label.
    pub fn project(&self) -> Option<&str> {
        self.labels.get(LABEL_PROJECT).map(String::as_str)
    }
}

/// Names of the volume directories under `state` (skipping dot entries).
fn volume_dirs(state: &Path) -> io::Result<Vec<String>> {
    let entries = match fs::read_dir(state) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() && !name.starts_with('.') {
            out.push(name);
        }
    }
    Ok(out)
}

/// Whether `name` is a valid volume name (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`).
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest: Vec<char> = chars.collect();
    first_ok
        && !rest.is_empty()
        && rest
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        for good in ["shop_data", "a1", "x.y-z_0", &"f".repeat(64)] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in [
            "",
            "a",
            ".lock",
            "_x",
            "../etc",
            "a/b",
            "a b",
            ".removing-x",
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn records_are_listed_by_name_and_dot_entries_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let paths = VolumePaths::new(dir.path(), &dir.path().join("run"));
        for name in ["zz", "aa"] {
            fs::create_dir_all(paths.data(name)).unwrap();
            let record = VolumeRecord {
                name: name.into(),
                driver: "local".into(),
                labels: BTreeMap::new(),
                options: BTreeMap::new(),
                created: "2026-01-01T00:00:00Z".into(),
                mountpoint: "/elsewhere".into(),
            };
            fsutil::write_json(&paths.record(name), &record).unwrap();
        }
        fs::create_dir_all(paths.removing("old")).unwrap();
        fs::create_dir_all(paths.data("half")).unwrap();
        let names: Vec<_> = paths.records().unwrap();
        let names: Vec<_> = names.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["aa", "zz"]);
        let aa = paths.read_record("aa").unwrap().unwrap();
        assert_eq!(aa.mountpoint, paths.data("aa"));
    }
}
