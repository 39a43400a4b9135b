//! Getting one run of a container ready: the overlay rootfs mounted, the
//! image's users read from inside it, the OCI spec built and written to the
//! bundle, with the image's content copied into empty copy-up volumes in
//! between (`copyup`). Also the image-derived settings the monitor needs
//! (healthcheck, stop signal).
//!
//! Files of the image (`/etc/passwd`, `/etc/group`) are opened through a
//! [`pathrs::Root`], so a symlink in the image cannot make us read a host file.

use std::io::Read as _;
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;
use pathrs::Root;
use pathrs::flags::OpenFlags;

use crate::config::Healthcheck;
use crate::container::{ContainerRecord, Paths};
use crate::rootfs::Overlay;
use crate::spec::{self, KernelVersion, SpecInput};
use crate::store::Store;
use crate::{cgroups, copyup, rootfs};

/// A bundle ready for `create`.
pub struct Prepared {
    /// Bundle directory (holds `config.json` and `rootfs/`).
    pub bundle: PathBuf,
}

/// Why a bundle could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The image store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The rootfs could not be mounted.
    #[error(transparent)]
    Rootfs(#[from] rootfs::RootfsError),
    /// The image's content could not be copied into a volume.
    #[error(transparent)]
    CopyUp(#[from] copyup::CopyUpError),
    /// The spec could not be built.
    #[error("invalid container settings")]
    Spec(#[from] spec::SpecError),
    /// The seccomp profile could not be compiled or kept.
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp_filter::FilterError),
    /// The spec could not be written.
    #[error("failed to write {path}")]
    Write {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// The overlay of a container.
pub fn overlay(paths: &Paths, record: &ContainerRecord) -> Result<Overlay, PrepareError> {
    let store = Store::open(&paths.state_root)?;
    let dir = paths.container_dir(&record.id);
    let etc_files = crate::store::SKELETON_FILES.iter().all(|file| {
        let target = format!("/{file}");
        record.config.mounts.iter().any(|m| m.target == target)
    });
    let mut lower = vec![store.skeleton(etc_files)?];
    for diff_id in record.image.layers.iter().rev() {
        lower.push(store.layer_path(diff_id)?);
    }
    Ok(Overlay {
        lower,
        upper: dir.join("upper"),
        work: dir.join("work"),
        target: dir.join("bundle/rootfs"),
    })
}

/// The image config of a container's image.
pub fn image_config(
    paths: &Paths,
    record: &ContainerRecord,
) -> Result<oci_spec::image::Config, PrepareError> {
    let store = Store::open(&paths.state_root)?;
    let bytes = store.blob(&record.image.id)?;
    let parsed: oci_spec::image::ImageConfiguration =
        serde_json::from_slice(&bytes).map_err(|source| crate::store::StoreError::Config {
            digest: record.image.id.clone(),
            source,
        })?;
    Ok(parsed.config().clone().unwrap_or_default())
}

/// Mounts the rootfs and writes `bundle/config.json`.
pub fn bundle(paths: &Paths, record: &ContainerRecord) -> Result<Prepared, PrepareError> {
    let overlay = overlay(paths, record)?;
    rootfs::mount(&overlay)?;
    copyup::copy_up_mounts(&overlay.target, &record.config.mounts)?;
    let image = image_config(paths, record)?;
    let passwd = read_in_root(&overlay.target, "/etc/passwd");
    let group = read_in_root(&overlay.target, "/etc/group");
    let hard = |name: &str| hard_limit(name);
    let release = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let mounts = cgroup_mounts();
    let input = SpecInput {
        id: &record.id,
        config: &record.config,
        image: &image,
        rootfs: &overlay.target,
        passwd: passwd.as_deref(),
        group: group.as_deref(),
        cgroups_path: cgroups::cgroups_path(&record.id),
        hard_limits: &hard,
        kernel: KernelVersion::parse(&release),
        host_hostname: Some(&host),
        cgroup_mounts: &mounts,
        host_bounding: host_bounding(),
    };
    let mut spec = spec::build_spec(&input)?;
    let bundle = paths.container_dir(&record.id).join("bundle");
    crate::seccomp_filter::prepare(&mut spec, &paths.state_root.join("seccomp"), &bundle)?;
    let path = bundle.join("config.json");
    let json = serde_json::to_vec_pretty(&spec).map_err(std::io::Error::other);
    json.and_then(|bytes| crate::fsutil::write_atomic_unsynced(&path, &bytes))
        .map_err(|source| PrepareError::Write { path, source })?;
    Ok(Prepared { bundle })
}

/// The capability bounding set of this process, from /proc/self/status.
fn host_bounding() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_cap_bounding(&status)
}

/// The `CapBnd` mask in the text of a /proc/<pid>/status file.
pub fn parse_cap_bounding(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// Mount points of the host's cgroup hierarchies.
fn cgroup_mounts() -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    cgroup_mount_points(&info)
}

/// Mount points of `cgroup`/`cgroup2` filesystems in the text of a mountinfo file.
pub fn cgroup_mount_points(mountinfo: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter(|line| {
            let fstype = line.split(" - ").nth(1).and_then(|r| r.split(' ').next());
            matches!(fstype, Some("cgroup" | "cgroup2"))
        })
        .filter_map(|line| line.split(' ').nth(4).map(str::to_string))
        .collect()
}

/// Reads a small file of the image, resolving it inside the rootfs.
pub fn read_in_root(rootfs: &std::path::Path, path: &str) -> Option<String> {
    let root = Root::open(rootfs).ok()?;
    let mut file = root.resolve(path).ok()?.reopen(OpenFlags::O_RDONLY).ok()?;
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    Some(text)
}

/// The current hard limit of a resource by its ulimit name.
fn hard_limit(name: &str) -> Option<u64> {
    use rustix::process::Resource;
    let resource = match name {
        "nofile" => Resource::Nofile,
        "nproc" => Resource::Nproc,
        "core" => Resource::Core,
        "memlock" => Resource::Memlock,
        "stack" => Resource::Stack,
        "cpu" => Resource::Cpu,
        "fsize" => Resource::Fsize,
        "data" => Resource::Data,
        "as" => Resource::As,
        "locks" => Resource::Locks,
        "sigpending" => Resource::Sigpending,
        "msgqueue" => Resource::Msgqueue,
        "nice" => Resource::Nice,
        "rtprio" => Resource::Rtprio,
        "rttime" => Resource::Rttime,
        "rss" => Resource::Rss,
        _ => return None,
    };
    rustix::process::getrlimit(resource).maximum
}

/// The healthcheck that applies: the container's, else the image's.
pub fn healthcheck(paths: &Paths, record: &ContainerRecord) -> Option<Healthcheck> {
    if let Some(check) = &record.config.healthcheck {
        return (!check.disable()).then(|| check.clone());
    }
    let store = Store::open(&paths.state_root).ok()?;
    let bytes = store.blob(&record.image.id).ok()?;
    let raw: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    image_healthcheck(raw.pointer("/config/Healthcheck")?)
}

/// Docker's `Healthcheck` object of an image config (durations in nanoseconds).
pub fn image_healthcheck(value: &serde_json::Value) -> Option<Healthcheck> {
    let test: Vec<String> = serde_json::from_value(value.get("Test")?.clone()).ok()?;
    let nanos = |key: &str| {
        value
            .get(key)
            .and_then(serde_json::Value::as_u64)
            .filter(|n| *n > 0)
            .map(Duration::from_nanos)
    };
    let check = Healthcheck {
        test,
        interval: nanos("Interval"),
        timeout: nanos("Timeout"),
        retries: value
            .get("Retries")
            .and_then(|r| r.as_u64())
            .map(|r| r as u32),
        start_period: nanos("StartPeriod"),
        start_interval: nanos("StartInterval"),
    };
    (!check.disable() && !check.test.is_empty()).then_some(check)
}

/// The signal `stop` sends first.
pub fn stop_signal(paths: &Paths, record: &ContainerRecord) -> Signal {
    let image = image_config(paths, record).unwrap_or_default();
    spec::parse_signal(&spec::stop_signal(&record.config, &image)).unwrap_or(Signal::SIGTERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bounding_set_is_read_from_proc_status() {
        let status = "Name:\tx\nCapBnd:\t000001fffeffffff\nCapAmb:\t0\n";
        assert_eq!(parse_cap_bounding(status), Some(0x1fffeffffff));
    }

    #[test]
    fn cgroup_hierarchies_are_found_in_mountinfo() {
        let info = "30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
                    31 30 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                    32 30 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup_mount_points(info),
            vec!["/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified"]
        );
    }

    #[test]
    fn an_image_healthcheck_is_read_with_nanosecond_durations() {
        let value = serde_json::json!({
            "Test": ["CMD-SHELL", "true"], "Interval": 2_000_000_000u64, "Retries": 4
        });
        let check = image_healthcheck(&value).unwrap();
        assert_eq!(check.interval, Some(Duration::from_secs(2)));
        assert_eq!(check.retries, Some(4));
        assert_eq!(check.timeout, None);
        assert!(image_healthcheck(&serde_json::json!({"Test": ["NONE"]})).is_none());
    }
}
