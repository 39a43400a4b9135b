//! tmpfs mounts: the service's `tmpfs:` list (`/run:size=64m,mode=1777,uid=1000`)
//! and the long form (`type: tmpfs` with `tmpfs.size` / `tmpfs.mode`).
//!
//! `size` and `mode` are parsed into numbers; a few other kernel tmpfs and
//! generic mount flags pass through; anything else is refused at plan time
//! rather than by the kernel at start.

use rcompose_spec::model::{ByteSize, ServiceVolume};

use super::{PlanError, PlannedMount, invalid_target, paths};

/// Flags passed through to the mount as written.
const FLAGS: &[&str] = &[
    "exec",
    "noexec",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "sync",
    "async",
    "dirsync",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
];

/// `key=value` options passed through to the mount as written.
const KEYED: &[&str] = &["uid", "gid", "nr_inodes", "nr_blocks", "mpol", "huge"];

/// Reads one entry of a service's `tmpfs:` list.
pub fn parse_tmpfs(service: &str, entry: &str) -> Result<PlannedMount, PlanError> {
    let (raw_target, options) = entry.split_once(':').unwrap_or((entry, ""));
    let target = paths::normalize_target(raw_target)
        .map_err(|reason| invalid_target(service, "tmpfs", raw_target, reason))?;
    let mut mount = PlannedMount::Tmpfs {
        target: target.clone(),
        size: None,
        mode: None,
        read_only: false,
        flags: Vec::new(),
    };
    for option in options.split(',').filter(|o| !o.is_empty()) {
        apply(&mut mount, option).ok_or_else(|| PlanError::InvalidOption {
            service: service.to_string(),
            field: "tmpfs",
            target: target.clone(),
            option: option.to_string(),
        })?;
    }
    Ok(mount)
}

/// Applies one option to a tmpfs mount; `None` when it is not understood.
fn apply(mount: &mut PlannedMount, option: &str) -> Option<()> {
    let PlannedMount::Tmpfs {
        size,
        mode,
        read_only,
        flags,
        ..
    } = mount
    else {
        return None;
    };
    match option.split_once('=') {
        Some(("size", v)) => *size = Some(ByteSize::parse(v).ok()?.0),
        Some(("mode", v)) => *mode = Some(u32::from_str_radix(v, 8).ok()?),
        Some((key, v)) if KEYED.contains(&key) && !v.is_empty() => flags.push(option.to_string()),
        Some(_) => return None,
        None if option == "ro" => *read_only = true,
        None if option == "rw" => *read_only = false,
        None if FLAGS.contains(&option) => flags.push(option.to_string()),
        None => return None,
    }
    Some(())
}

/// A long-form `type: tmpfs` mount whose target is already normalized.
pub(super) fn from_long_form(volume: &ServiceVolume, target: String) -> PlannedMount {
    let options = volume.tmpfs.clone().unwrap_or_default();
    PlannedMount::Tmpfs {
        target,
        size: options.size.map(|s| s.0),
        mode: options.mode,
        read_only: volume.read_only,
        flags: Vec::new(),
    }
}
