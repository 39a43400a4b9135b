//! The mount plan of one container: a service's `volumes:`, `tmpfs:` and
//! `volumes_from:` turned into an ordered list of [`PlannedMount`]s, as Docker
//! would mount them.
//!
//! This is a pure function of its inputs: no filesystem access. Host paths are
//! resolved lexically against the project directory, and whatever needs the
//! host (does a bind source exist?) takes the check as an injected function.
//!
//! Invariants of a plan: every target is absolute, normalized, not `/`, and
//! unique; mounts are ordered by target depth (stable), so a parent is always
//! mounted before anything beneath it; the service's own mounts replace mounts
//! inherited through `volumes_from` at the same target, as in Docker.

mod entry;
mod paths;
mod tmpfs;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rcompose_spec::model::{MountType, ServiceVolume};

pub use entry::{MountEntry, check_bind_sources};
pub use paths::{normalize_lexically, resolve_host_path};
pub use tmpfs::parse_tmpfs;

/// One mount of a container, after planning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlannedMount {
    /// A named volume (the full name, `shop_data`).
    Named {
        /// Full volume name.
        volume: String,
        /// Path inside the container.
        target: String,
        /// Mount read-only.
        read_only: bool,
        /// Do not copy the image's content into a new volume.
        nocopy: bool,
        /// Sub-directory of the volume to mount (relative, no `..`).
        subpath: Option<String>,
    },
    /// A volume created for this container alone.
    Anonymous {
        /// Path inside the container.
        target: String,
        /// Mount read-only.
        read_only: bool,
        /// Do not copy the image's content into the new volume.
        nocopy: bool,
    },
    /// A host path.
    Bind {
        /// Absolute, lexically normalized host path.
        source: PathBuf,
        /// Path inside the container.
        target: String,
        /// Mount read-only.
        read_only: bool,
        /// Mount propagation.
        propagation: Propagation,
        /// Create the host path when it is missing.
        create_host_path: bool,
        /// Bind sub-mounts too (`rbind`); `bind.recursive: disabled` turns it off.
        recursive: bool,
        /// SELinux relabelling asked for (`z`/`Z`); accepted and not acted on.
        selinux: Option<String>,
    },
    /// A memory-backed filesystem.
    Tmpfs {
        /// Path inside the container.
        target: String,
        /// Size limit in bytes.
        size: Option<u64>,
        /// File mode of the mount point.
        mode: Option<u32>,
        /// Mount read-only.
        read_only: bool,
        /// Further mount flags from the `tmpfs:` list (`exec`, `noatime`, `uid=1000`, …).
        flags: Vec<String>,
    },
}

impl PlannedMount {
    /// Path inside the container.
    pub fn target(&self) -> &str {
        match self {
            Self::Named { target, .. }
            | Self::Anonymous { target, .. }
            | Self::Bind { target, .. }
            | Self::Tmpfs { target, .. } => target,
        }
    }

    /// Whether the mount is read-only.
    pub fn read_only(&self) -> bool {
        match self {
            Self::Named { read_only, .. }
            | Self::Anonymous { read_only, .. }
            | Self::Bind { read_only, .. }
            | Self::Tmpfs { read_only, .. } => *read_only,
        }
    }

    /// The same mount, read-only when `read_only` (never made writable).
    fn restricted(mut self, read_only: bool) -> Self {
        match &mut self {
            Self::Named { read_only: ro, .. }
            | Self::Anonymous { read_only: ro, .. }
            | Self::Bind { read_only: ro, .. }
            | Self::Tmpfs { read_only: ro, .. } => *ro |= read_only,
        }
        self
    }
}

/// Mount propagation of a bind mount.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Propagation {
    /// `private`.
    Private,
    /// `rprivate`, Docker's default.
    #[default]
    Rprivate,
    /// `shared`.
    Shared,
    /// `rshared`.
    Rshared,
    /// `slave`.
    Slave,
    /// `rslave`.
    Rslave,
}

impl Propagation {
    /// Reads a propagation mode as Compose writes it.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "private" => Self::Private,
            "rprivate" => Self::Rprivate,
            "shared" => Self::Shared,
            "rshared" => Self::Rshared,
            "slave" => Self::Slave,
            "rslave" => Self::Rslave,
            _ => return None,
        })
    }

    /// The mount option naming this mode.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Rprivate => "rprivate",
            Self::Shared => "shared",
            Self::Rshared => "rshared",
            Self::Slave => "slave",
            Self::Rslave => "rslave",
        }
    }
}

/// One `volumes_from` entry as written: `web`, `web:ro`, `container:db:rw`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumesFromRef {
    /// Names a container rather than a service (`container:` prefix).
    pub container: bool,
    /// Service or container name.
    pub name: String,
    /// `:ro` was given: every inherited mount becomes read-only.
    pub read_only: bool,
}

/// The mounts of another container, inherited through `volumes_from`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InheritedMounts {
    /// The entry they come from.
    pub from: VolumesFromRef,
    /// That container's planned mounts, anonymous volumes already given their
    /// names (as [`PlannedMount::Named`]) so that both containers share them.
    pub mounts: Vec<PlannedMount>,
}

/// Everything the planner reads for one service.
#[derive(Clone, Copy, Debug)]
pub struct PlanInput<'a> {
    /// Service name, for error messages.
    pub service: &'a str,
    /// The service's `volumes:`, in long form.
    pub volumes: &'a [ServiceVolume],
    /// The service's `tmpfs:` entries (`/run:size=64m,mode=1777`).
    pub tmpfs: &'a [String],
    /// Directory relative bind sources resolve against (absolute).
    pub project_dir: &'a Path,
    /// What `~` expands to, when known.
    pub home: Option<&'a Path>,
    /// Top-level volume keys to their full names (`data` → `shop_data`).
    pub named_volumes: &'a BTreeMap<String, String>,
    /// Resolved `volumes_from` entries, in the order written.
    pub volumes_from: &'a [InheritedMounts],
}

/// Why a service's mounts could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Npipe, cluster and image mounts.
    #[error("services.{service}.volumes: mount type {kind} at {target} is not supported")]
    Unsupported {
        /// Service.
        service: String,
        /// Mount type as Compose writes it.
        kind: &'static str,
        /// Path inside the container.
        target: String,
    },
    /// A target that is relative, `/`, or climbs with `..`.
    #[error("services.{service}.{field}: invalid mount target {target:?}: {reason}")]
    InvalidTarget {
        /// Service.
        service: String,
        /// `volumes` or `tmpfs`.
        field: &'static str,
        /// The target as written.
        target: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two of the service's own mounts at one target.
    #[error("services.{service}: duplicate mount target {target}")]
    DuplicateTarget {
        /// Service.
        service: String,
        /// The target.
        target: String,
    },
    /// A bind mount without a source.
    #[error("services.{service}.volumes: bind mount at {target} has no source")]
    MissingSource {
        /// Service.
        service: String,
        /// Path inside the container.
        target: String,
    },
    /// A bind source that cannot be made an absolute host path.
    #[error("services.{service}.volumes: invalid bind source {source_path:?}: {reason}")]
    InvalidSource {
        /// Service.
        service: String,
        /// The source as written.
        source_path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A named volume missing from the top-level `volumes:`.
    #[error(
        "services.{service}.volumes: volume {volume:?} is not declared in the top-level volumes"
    )]
    UndeclaredVolume {
        /// Service.
        service: String,
        /// The key as written.
        volume: String,
    },
    /// An invalid option (propagation, subpath, tmpfs option).
    #[error("services.{service}.{field}: invalid option {option:?} for {target}")]
    InvalidOption {
        /// Service.
        service: String,
        /// `volumes` or `tmpfs`.
        field: &'static str,
        /// Path inside the container (or the entry as written).
        target: String,
        /// The option.
        option: String,
    },
    /// A `volumes_from` entry that cannot be read.
    #[error("services.{service}.volumes_from: invalid entry {entry:?}")]
    InvalidVolumesFrom {
        /// Service.
        service: String,
        /// The entry as written.
        entry: String,
    },
    /// An inherited anonymous volume the caller did not name.
    #[error("services.{service}.volumes_from: anonymous volume of {from} at {target} has no name")]
    UnnamedInherited {
        /// Service.
        service: String,
        /// Service or container it comes from.
        from: String,
        /// Path inside the container.
        target: String,
    },
    /// A bind source missing on the host with `create_host_path: false`.
    #[error("services.{service}.volumes: bind source {} does not exist", source_path.display())]
    BindSourceMissing {
        /// Service.
        service: String,
        /// Host path.
        source_path: PathBuf,
    },
    /// A named or anonymous volume converted without its host path.
    #[error("no host path given for the volume mounted at {target}")]
    NoHostPath {
        /// Path inside the container.
        target: String,
    },
}

/// Reads one `volumes_from` entry: `name[:ro|:rw]` or `container:name[:ro|:rw]`.
pub fn parse_volumes_from(service: &str, entry: &str) -> Result<VolumesFromRef, PlanError> {
    let (container, rest) = match entry.strip_prefix("container:") {
        Some(rest) => (true, rest),
        None => (false, entry),
    };
    let (name, read_only) = match rest.rsplit_once(':') {
        Some((name, "ro")) => (name, true),
        Some((name, "rw")) => (name, false),
        Some(_) => ("", false),
        None => (rest, false),
    };
    if name.is_empty() || name.contains(':') {
        return Err(PlanError::InvalidVolumesFrom {
            service: service.to_string(),
            entry: entry.to_string(),
        });
    }
    Ok(VolumesFromRef {
        container,
        name: name.to_string(),
        read_only,
    })
}

/// Plans the mounts of one service, ordered parents first.
pub fn plan_mounts(input: &PlanInput<'_>) -> Result<Vec<PlannedMount>, PlanError> {
    let mut own: Vec<PlannedMount> = Vec::new();
    for volume in input.volumes {
        push_unique(input.service, &mut own, plan_volume(input, volume)?)?;
    }
    for entry in input.tmpfs {
        push_unique(input.service, &mut own, parse_tmpfs(input.service, entry)?)?;
    }
    let mut mounts = inherited(input, &own)?;
    mounts.extend(own);
    mounts.sort_by_key(|m| depth(m.target()));
    Ok(mounts)
}

/// Adds `mount` unless one of the service's own mounts has its target.
fn push_unique(
    service: &str,
    mounts: &mut Vec<PlannedMount>,
    mount: PlannedMount,
) -> Result<(), PlanError> {
    if mounts.iter().any(|m| m.target() == mount.target()) {
        return Err(PlanError::DuplicateTarget {
            service: service.to_string(),
            target: mount.target().to_string(),
        });
    }
    mounts.push(mount);
    Ok(())
}

/// Mounts inherited through `volumes_from`: a later entry replaces an earlier
/// one at the same target, and the service's own mounts replace both.
fn inherited(input: &PlanInput<'_>, own: &[PlannedMount]) -> Result<Vec<PlannedMount>, PlanError> {
    let mut mounts: Vec<PlannedMount> = Vec::new();
    for source in input.volumes_from {
        for mount in &source.mounts {
            if let PlannedMount::Anonymous { target, .. } = mount {
                return Err(PlanError::UnnamedInherited {
                    service: input.service.to_string(),
                    from: source.from.name.clone(),
                    target: target.clone(),
                });
            }
            mounts.retain(|m| m.target() != mount.target());
            mounts.push(mount.clone().restricted(source.from.read_only));
        }
    }
    mounts.retain(|m| own.iter().all(|o| o.target() != m.target()));
    Ok(mounts)
}

/// Plans one entry of `volumes:`.
fn plan_volume(input: &PlanInput<'_>, volume: &ServiceVolume) -> Result<PlannedMount, PlanError> {
    let target = paths::normalize_target(&volume.target)
        .map_err(|reason| invalid_target(input.service, "volumes", &volume.target, reason))?;
    match volume.kind {
        MountType::Volume => plan_named(input, volume, target),
        MountType::Bind => plan_bind(input, volume, target),
        MountType::Tmpfs => Ok(tmpfs::from_long_form(volume, target)),
        MountType::Npipe | MountType::Cluster | MountType::Image => Err(PlanError::Unsupported {
            service: input.service.to_string(),
            kind: kind_name(volume.kind),
            target,
        }),
    }
}

/// A named volume, or an anonymous one when there is no source.
fn plan_named(
    input: &PlanInput<'_>,
    volume: &ServiceVolume,
    target: String,
) -> Result<PlannedMount, PlanError> {
    let options = volume.volume.clone().unwrap_or_default();
    let Some(key) = volume.source.as_deref().filter(|s| !s.is_empty()) else {
        return Ok(PlannedMount::Anonymous {
            target,
            read_only: volume.read_only,
            nocopy: options.nocopy,
        });
    };
    let full = input
        .named_volumes
        .get(key)
        .ok_or_else(|| PlanError::UndeclaredVolume {
            service: input.service.to_string(),
            volume: key.to_string(),
        })?;
    let subpath = match options.subpath.as_deref() {
        Some(sub) => Some(
            paths::check_subpath(sub).ok_or_else(|| PlanError::InvalidOption {
                service: input.service.to_string(),
                field: "volumes",
                target: target.clone(),
                option: format!("subpath={sub}"),
            })?,
        ),
        None => None,
    };
    Ok(PlannedMount::Named {
        volume: full.clone(),
        target,
        read_only: volume.read_only,
        nocopy: options.nocopy,
        subpath,
    })
}

/// A bind mount with its source made absolute.
fn plan_bind(
    input: &PlanInput<'_>,
    volume: &ServiceVolume,
    target: String,
) -> Result<PlannedMount, PlanError> {
    let service = input.service.to_string();
    let raw = volume.source.as_deref().filter(|s| !s.is_empty());
    let raw = raw.ok_or_else(|| PlanError::MissingSource {
        service: service.clone(),
        target: target.clone(),
    })?;
    let source = resolve_host_path(raw, input.project_dir, input.home).map_err(|reason| {
        PlanError::InvalidSource {
            service: service.clone(),
            source_path: raw.to_string(),
            reason,
        }
    })?;
    let options = volume.bind.clone().unwrap_or_default();
    let propagation = match options.propagation.as_deref() {
        None => Propagation::default(),
        Some(p) => Propagation::parse(p).ok_or_else(|| PlanError::InvalidOption {
            service,
            field: "volumes",
            target: target.clone(),
            option: format!("propagation={p}"),
        })?,
    };
    Ok(PlannedMount::Bind {
        source,
        target,
        read_only: volume.read_only,
        propagation,
        create_host_path: options.create_host_path,
        recursive: options.recursive.as_deref() != Some("disabled"),
        selinux: options.selinux,
    })
}

fn invalid_target(
    service: &str,
    field: &'static str,
    target: &str,
    reason: &'static str,
) -> PlanError {
    PlanError::InvalidTarget {
        service: service.to_string(),
        field,
        target: target.to_string(),
        reason,
    }
}

fn kind_name(kind: MountType) -> &'static str {
    match kind {
        MountType::Volume => "volume",
        MountType::Bind => "bind",
        MountType::Tmpfs => "tmpfs",
        MountType::Npipe => "npipe",
        MountType::Cluster => "cluster",
        MountType::Image => "image",
    }
}

/// Number of path components below `/`.
fn depth(target: &str) -> usize {
    target.split('/').filter(|c| !c.is_empty()).count()
}
