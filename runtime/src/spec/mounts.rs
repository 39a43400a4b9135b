//! The container's mount list: Docker's default filesystems (/proc, /dev,
//! /dev/pts, /dev/shm, /dev/mqueue, /sys, /sys/fs/cgroup) followed by the
//! configured mounts.
//!
//! Invariants: a configured mount replaces the default with the same target;
//! configured mounts are ordered by target depth (stable), so a parent is
//! always mounted before anything beneath it.

use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::Mount;

use super::SpecError;
use crate::config::{COPY_UP_OPTION, ContainerConfig, MountSpec};

/// Docker's /dev/shm size when `shm_size` is unset: 64 MiB.
const DEFAULT_SHM_SIZE: u64 = 64 * 1024 * 1024;

/// Every mount of the container, in the order the runtime must apply them.
pub(crate) fn plan(config: &ContainerConfig) -> Result<Vec<Mount>, SpecError> {
    let configured = configured_mounts(&config.mounts)?;
    let taken: Vec<PathBuf> = configured.iter().map(|m| m.destination().clone()).collect();
    let mut mounts: Vec<Mount> = default_mounts(config)
        .into_iter()
        .filter(|m| !taken.contains(m.destination()))
        .collect();
    mounts.extend(configured);
    Ok(mounts)
}

fn default_mounts(config: &ContainerConfig) -> Vec<Mount> {
    let shm_size = format!("size={}", config.shm_size.unwrap_or(DEFAULT_SHM_SIZE));
    // Privileged containers may write to /sys, like Docker's.
    let sys_mode = if config.privileged { "rw" } else { "ro" };
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_mode],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", sys_mode],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_size],
        ),
    ]
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut mount = Mount::default();
    mount
        .set_destination(PathBuf::from(destination))
        .set_typ(Some(typ.to_string()))
        .set_source(Some(PathBuf::from(source)))
        .set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    mount
}

fn configured_mounts(specs: &[MountSpec]) -> Result<Vec<Mount>, SpecError> {
    let mut mounts = specs
        .iter()
        .map(configured_mount)
        .collect::<Result<Vec<_>, _>>()?;
    mounts.sort_by_key(|m| depth(m.destination()));
    Ok(mounts)
}

fn configured_mount(spec: &MountSpec) -> Result<Mount, SpecError> {
    let target = Path::new(&spec.target);
    if !target.is_absolute() {
        return Err(SpecError::RelativeMountTarget(spec.target.clone()));
    }
    // The copy-up marker is ours (applied in `prepare`), not a mount option.
    let mut options: Vec<String> = spec
        .options
        .iter()
        .filter(|o| *o != COPY_UP_OPTION)
        .cloned()
        .collect();
    // Docker binds recursively unless told otherwise.
    let is_bind = spec.kind == "bind";
    if is_bind && !options.iter().any(|o| o == "bind" || o == "rbind") {
        options.push("rbind".to_string());
    }
    let mut mount = Mount::default();
    mount
        .set_destination(normalize(target))
        .set_typ(Some(spec.kind.clone()))
        .set_source(Some(PathBuf::from(&spec.source)))
        .set_options(Some(options));
    Ok(mount)
}

/// The target rebuilt from its components, which drops `.` and trailing
/// slashes, so `/data/` and `/data` name the same place.
fn normalize(path: &Path) -> PathBuf {
    path.components().collect()
}

fn depth(path: &Path) -> usize {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(target: &str, source: &str) -> MountSpec {
        MountSpec {
            target: target.into(),
            source: source.into(),
            kind: "bind".into(),
            options: vec!["ro".into()],
        }
    }

    fn find<'a>(mounts: &'a [Mount], destination: &str) -> &'a Mount {
        mounts
            .iter()
            .find(|m| m.destination() == Path::new(destination))
            .unwrap_or_else(|| panic!("no mount at {destination}"))
    }

    fn options(mount: &Mount) -> Vec<String> {
        mount.options().clone().unwrap_or_default()
    }

    #[test]
    fn default_mounts_match_docker() {
        let mounts = plan(&ContainerConfig::default()).unwrap();
        let targets: Vec<_> = mounts.iter().map(|m| m.destination().clone()).collect();
        assert_eq!(targets.len(), 7);
        assert!(options(find(&mounts, "/dev")).contains(&"size=65536k".into()));
        assert!(options(find(&mounts, "/dev/pts")).contains(&"ptmxmode=0666".into()));
        assert!(options(find(&mounts, "/sys")).contains(&"ro".into()));
        assert_eq!(
            find(&mounts, "/sys/fs/cgroup").typ().as_deref(),
            Some("cgroup")
        );
        assert_eq!(
            find(&mounts, "/dev/mqueue").typ().as_deref(),
            Some("mqueue")
        );
    }

    #[test]
    fn shm_is_64_mib_unless_configured() {
        let mounts = plan(&ContainerConfig::default()).unwrap();
        let shm = options(find(&mounts, "/dev/shm"));
        assert!(shm.contains(&"size=67108864".into()));
        assert!(shm.contains(&"mode=1777".into()));
        let config = ContainerConfig {
            shm_size: Some(1 << 30),
            ..ContainerConfig::default()
        };
        let mounts = plan(&config).unwrap();
        assert!(options(find(&mounts, "/dev/shm")).contains(&"size=1073741824".into()));
    }

    #[test]
    fn privileged_mounts_sys_read_write() {
        let config = ContainerConfig {
            privileged: true,
            ..ContainerConfig::default()
        };
        let mounts = plan(&config).unwrap();
        assert!(options(find(&mounts, "/sys")).contains(&"rw".into()));
        assert!(!options(find(&mounts, "/sys")).contains(&"ro".into()));
    }

    #[test]
    fn configured_mounts_follow_the_defaults_parents_first() {
        let config = ContainerConfig {
            mounts: vec![
                bind("/data/cache", "/h/c"),
                bind("/data", "/h/d"),
                bind("/etc/hosts", "/h/h"),
            ],
            ..ContainerConfig::default()
        };
        let mounts = plan(&config).unwrap();
        let tail: Vec<_> = mounts[7..]
            .iter()
            .map(|m| m.destination().clone())
            .collect();
        let expected = ["/data", "/data/cache", "/etc/hosts"].map(PathBuf::from);
        assert_eq!(tail, expected);
    }

    #[test]
    fn bind_mounts_are_recursive_unless_told_otherwise() {
        let config = ContainerConfig {
            mounts: vec![bind("/a", "/h/a")],
            ..ContainerConfig::default()
        };
        let mounts = plan(&config).unwrap();
        assert_eq!(options(find(&mounts, "/a")), vec!["ro", "rbind"]);
    }

    #[test]
    fn the_copy_up_marker_is_not_a_mount_option() {
        let mut volume = bind("/data", "/v/data");
        volume.options = vec!["rbind".into(), COPY_UP_OPTION.into(), "rw".into()];
        let config = ContainerConfig {
            mounts: vec![volume],
            ..ContainerConfig::default()
        };
        let mounts = plan(&config).unwrap();
        assert_eq!(options(find(&mounts, "/data")), vec!["rbind", "rw"]);
    }

    #[test]
    fn a_configured_mount_replaces_the_default_at_the_same_target() {
        let shm = MountSpec {
            target: "/dev/shm/".into(),
            source: "tmpfs".into(),
            kind: "tmpfs".into(),
            options: vec!["size=1g".into()],
        };
        let config = ContainerConfig {
            mounts: vec![shm],
            ..ContainerConfig::default()
        };
        let mounts = plan(&config).unwrap();
        let shms: Vec<_> = mounts
            .iter()
            .filter(|m| m.destination() == Path::new("/dev/shm"))
            .collect();
        assert_eq!(shms.len(), 1);
        assert_eq!(options(shms[0]), vec!["size=1g"]);
    }

    #[test]
    fn a_relative_mount_target_is_rejected() {
        let config = ContainerConfig {
            mounts: vec![bind("data", "/h/d")],
            ..ContainerConfig::default()
        };
        assert_eq!(
            plan(&config).unwrap_err(),
            SpecError::RelativeMountTarget("data".into())
        );
    }
}
