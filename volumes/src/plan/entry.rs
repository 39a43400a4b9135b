//! From a [`PlannedMount`] to the mount the runtime applies ([`MountEntry`]:
//! target, source, filesystem type, options, as in an OCI spec), and the
//! host-side check of bind sources.
//!
//! Options are Docker's: volumes and binds are `rbind` with `rprivate`
//! propagation unless told otherwise; tmpfs is `noexec,nosuid,nodev` unless an
//! `exec`, `suid` or `dev` flag lifts it. Copy-up is reported as a flag, not as
//! an option: the caller turns it into the runtime's marker.

use std::path::{Path, PathBuf};

use super::{PlanError, PlannedMount, Propagation};

/// One mount as the runtime takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    /// Path inside the container.
    pub target: String,
    /// Host path (binds and volumes) or `tmpfs`.
    pub source: String,
    /// Filesystem type: `bind` or `tmpfs`.
    pub kind: String,
    /// Mount options (`rbind`, `ro`, `rprivate`, `size=…`, `mode=…`).
    pub options: Vec<String>,
    /// Copy the image's content at the target into the source while it is empty.
    pub copy_up: bool,
}

/// tmpfs defaults and the flag that lifts each.
const TMPFS_DEFAULTS: &[(&str, &str)] = &[("noexec", "exec"), ("nosuid", "suid"), ("nodev", "dev")];

impl PlannedMount {
    /// The runtime's view of this mount. `host_source` is the host directory of a
    /// named or anonymous volume (already resolved to its subpath, if any); it is
    /// ignored for binds and tmpfs.
    pub fn mount_spec(&self, host_source: Option<&Path>) -> Result<MountEntry, PlanError> {
        match self {
            Self::Named {
                target,
                read_only,
                nocopy,
                subpath,
                ..
            } => {
                let copy_up = !nocopy && subpath.is_none();
                volume_entry(target, *read_only, copy_up, host_source)
            }
            Self::Anonymous {
                target,
                read_only,
                nocopy,
            } => volume_entry(target, *read_only, !nocopy, host_source),
            Self::Bind {
                source,
                target,
                read_only,
                propagation,
                recursive,
                ..
            } => {
                let bind = if *recursive { "rbind" } else { "bind" };
                Ok(MountEntry {
                    target: target.clone(),
                    source: source.display().to_string(),
                    kind: "bind".to_string(),
                    options: vec![
                        bind.to_string(),
                        access(*read_only),
                        propagation.as_str().to_string(),
                    ],
                    copy_up: false,
                })
            }
            Self::Tmpfs {
                target,
                size,
                mode,
                read_only,
                flags,
            } => Ok(MountEntry {
                target: target.clone(),
                source: "tmpfs".to_string(),
                kind: "tmpfs".to_string(),
                options: tmpfs_options(*size, *mode, *read_only, flags),
                copy_up: false,
            }),
        }
    }
}

/// A volume is a recursive, private bind mount of its host directory.
fn volume_entry(
    target: &str,
    read_only: bool,
    copy_up: bool,
    host_source: Option<&Path>,
) -> Result<MountEntry, PlanError> {
    let source = host_source.ok_or_else(|| PlanError::NoHostPath {
        target: target.to_string(),
    })?;
    Ok(MountEntry {
        target: target.to_string(),
        source: source.display().to_string(),
        kind: "bind".to_string(),
        options: vec![
            "rbind".to_string(),
            access(read_only),
            Propagation::Rprivate.as_str().to_string(),
        ],
        copy_up,
    })
}

fn access(read_only: bool) -> String {
    if read_only { "ro" } else { "rw" }.to_string()
}

fn tmpfs_options(
    size: Option<u64>,
    mode: Option<u32>,
    read_only: bool,
    flags: &[String],
) -> Vec<String> {
    let lifted = |(default, lift): &&(&str, &str)| flags.iter().any(|f| f == lift || f == default);
    let mut options: Vec<String> = TMPFS_DEFAULTS
        .iter()
        .filter(|d| !lifted(d))
        .map(|(default, _)| default.to_string())
        .collect();
    options.extend(flags.iter().cloned());
    options.push(access(read_only));
    options.push(Propagation::Rprivate.as_str().to_string());
    options.extend(size.map(|s| format!("size={s}")));
    options.extend(mode.map(|m| format!("mode={m:o}")));
    options
}

/// Checks the bind sources of a plan against the host: a missing source is an
/// error unless the mount may create it. Returns the sources to create.
pub fn check_bind_sources(
    service: &str,
    mounts: &[PlannedMount],
    exists: impl Fn(&Path) -> bool,
) -> Result<Vec<PathBuf>, PlanError> {
    let mut create = Vec::new();
    for mount in mounts {
        let PlannedMount::Bind {
            source,
            create_host_path,
            ..
        } = mount
        else {
            continue;
        };
        if exists(source) {
            continue;
        }
        if !create_host_path {
            return Err(PlanError::BindSourceMissing {
                service: service.to_string(),
                source_path: source.clone(),
            });
        }
        if !create.contains(source) {
            create.push(source.clone());
        }
    }
    Ok(create)
}
