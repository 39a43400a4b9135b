//! The `local` volume driver, as Docker's: a volume is a directory
//! `<state>/<name>/_data` with its record beside it (see `store` for the
//! layout).
//!
//! `driver_opts` supported, like Docker's local driver:
//!
//! - `type: tmpfs` (`device` defaults to `tmpfs`), `o: size=64m,mode=0700,…`:
//!   a tmpfs mounted on `_data`; flag words in `o` (`ro`, `nosuid`, `nodev`,
//!   `noexec`, `noatime`, …) become mount flags, the rest tmpfs options.
//! - `type: none`, `o: bind` (or `rbind`, optionally with `ro`),
//!   `device: /absolute/path`: that directory bind-mounted on `_data`.
//!
//! Anything else (`nfs`, `ext4`, `cifs`, `size` without a type, …) is refused
//! with an error saying what is supported, at plan time as well as here.
//! Such a mount is made on first use ([`VolumeDriver::mount`]), stays while
//! rcompose is not running (there is no daemon to count users), and is
//! undone by removal, which deletes nothing while the unmount fails — a bind
//! volume's device is never deleted through `_data`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rcompose_reconciler::fsutil;

use crate::driver::{DriverError, Result, StringMap, VolumeDriver};
use crate::mounter::{HostMount, LinuxMounter, Mounter};
use crate::store::{VolumePaths, VolumeRecord, is_valid_name};

const SUPPORTED: &str =
    "supported: type tmpfs with o tmpfs options, or type none with o bind and an absolute device";

/// What a local volume's `driver_opts` ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalOptions {
    /// No options: a plain directory.
    Plain,
    /// A tmpfs on `_data`.
    Tmpfs {
        /// Device name shown in the mount table.
        device: String,
        /// The `o` words.
        options: Vec<String>,
    },
    /// A host directory bind-mounted on `_data`.
    Bind {
        /// The host directory.
        device: PathBuf,
        /// The `o` words (`bind` or `rbind` among them).
        options: Vec<String>,
    },
}

impl LocalOptions {
    /// Reads `driver_opts` of volume `volume`.
    pub fn parse(volume: &str, opts: &StringMap) -> Result<LocalOptions> {
        let unsupported = |reason: String| DriverError::UnsupportedOptions {
            volume: volume.into(),
            reason,
        };
        if let Some(key) = opts
            .keys()
            .find(|k| !matches!(k.as_str(), "type" | "device" | "o"))
        {
            return Err(unsupported(format!(
                "option {key:?} is not supported; {SUPPORTED}"
            )));
        }
        if opts.is_empty() {
            return Ok(LocalOptions::Plain);
        }
        let words = split_o(opts.get("o").map(String::as_str).unwrap_or(""));
        let bind = words.iter().any(|w| w == "bind" || w == "rbind");
        let device = opts.get("device").map(String::as_str);
        match (opts.get("type").map(String::as_str).unwrap_or(""), bind) {
            ("tmpfs", false) => Ok(LocalOptions::Tmpfs {
                device: device.unwrap_or("tmpfs").into(),
                options: words,
            }),
            ("none" | "", true) => bind_options(device, words).map_err(unsupported),
            (kind, _) => Err(unsupported(format!(
                "type {kind:?} with o {:?}; {SUPPORTED}",
                words.join(",")
            ))),
        }
    }

    /// The mount to make on `data`, `None` for a plain directory.
    pub fn host_mount(&self, data: &Path) -> Option<HostMount> {
        let (source, fstype, options) = match self {
            LocalOptions::Plain => return None,
            LocalOptions::Tmpfs { device, options } => (device.clone(), "tmpfs", options),
            LocalOptions::Bind { device, options } => {
                (device.to_string_lossy().into_owned(), "none", options)
            }
        };
        Some(HostMount {
            source,
            target: data.to_path_buf(),
            fstype: fstype.into(),
            options: options.clone(),
        })
    }
}

fn split_o(o: &str) -> Vec<String> {
    o.split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

fn bind_options(
    device: Option<&str>,
    words: Vec<String>,
) -> std::result::Result<LocalOptions, String> {
    match device {
        Some(d) if Path::new(d).is_absolute() => Ok(LocalOptions::Bind {
            device: d.into(),
            options: words,
        }),
        Some(d) => Err(format!("bind device {d:?} must be an absolute path")),
        None => Err(format!("o bind needs a device; {SUPPORTED}")),
    }
}

/// Docker's `local` driver over a [`Mounter`].
pub struct LocalDriver<M = LinuxMounter> {
    paths: VolumePaths,
    mounter: M,
}

impl<M: Mounter> LocalDriver<M> {
    /// A driver keeping volumes under `paths`.
    pub fn new(paths: VolumePaths, mounter: M) -> LocalDriver<M> {
        LocalDriver { paths, mounter }
    }

    /// Where volumes live.
    pub fn paths(&self) -> &VolumePaths {
        &self.paths
    }

    /// The mounter, for tests that look at what it did.
    pub fn mounter(&self) -> &M {
        &self.mounter
    }

    fn lock(&self) -> Result<fsutil::LockGuard> {
        let state = &self.paths.state;
        fsutil::create_top_dir(state).map_err(state_err("create", state))?;
        let lock = self.paths.lock();
        fsutil::lock(&lock).map_err(state_err("lock", &lock))
    }

    fn read(&self, name: &str) -> Result<Option<VolumeRecord>> {
        check_name(name)?;
        let path = self.paths.record(name);
        self.paths
            .read_record(name)
            .map_err(io_err(name, "read", &path))
    }

    fn write_new(
        &self,
        name: &str,
        labels: &StringMap,
        options: &StringMap,
    ) -> Result<VolumeRecord> {
        let data = self.paths.data(name);
        fs::create_dir_all(&data).map_err(io_err(name, "create", &data))?;
        let record = VolumeRecord {
            name: name.into(),
            driver: "local".into(),
            labels: labels.clone(),
            options: options.clone(),
            created: rcompose_runtime::logs::format_rfc3339(SystemTime::now()),
            mountpoint: data,
        };
        let path = self.paths.record(name);
        fsutil::write_json(&path, &record).map_err(io_err(name, "write", &path))?;
        tracing::info!(volume = name, "created volume");
        Ok(record)
    }

    /// Unmounts `data` if something is mounted there, and makes sure it
    /// is gone before anything below it is deleted.
    fn unmount(&self, name: &str, data: &Path) -> Result<()> {
        let unmount_err = |source| DriverError::Unmount {
            volume: name.into(),
            target: data.to_path_buf(),
            source,
        };
        if self.mounter.is_mounted(data).map_err(unmount_err)? {
            self.mounter.unmount(data).map_err(unmount_err)?;
        }
        if self.mounter.is_mounted(data).map_err(unmount_err)? {
            return Err(unmount_err(io::Error::other("still mounted after unmount")));
        }
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<()> {
        let dir = self.paths.volume_dir(name);
        let trash = self.paths.removing(name);
        self.unmount(name, &self.paths.data(name))?;
        self.unmount(name, &trash.join("_data"))?;
        fsutil::remove_dir_all_if_exists(&trash).map_err(io_err(name, "delete", &trash))?;
        if dir.exists() {
            fs::rename(&dir, &trash).map_err(io_err(name, "move aside", &dir))?;
        }
        fsutil::remove_dir_all_if_exists(&trash).map_err(io_err(name, "delete", &trash))?;
        tracing::info!(volume = name, "removed volume");
        Ok(())
    }
}

impl<M: Mounter> VolumeDriver for LocalDriver<M> {
    fn name(&self) -> &'static str {
        "local"
    }

    fn create(&self, name: &str, labels: &StringMap, options: &StringMap) -> Result<VolumeRecord> {
        check_name(name)?;
        LocalOptions::parse(name, options)?;
        let _lock = self.lock()?;
        match self.read(name)? {
            Some(record) => Ok(record),
            None => self.write_new(name, labels, options),
        }
    }

    fn get(&self, name: &str) -> Result<Option<VolumeRecord>> {
        self.read(name)
    }

    fn list(&self) -> Result<Vec<VolumeRecord>> {
        let state = &self.paths.state;
        self.paths
            .records()
            .map_err(state_err("list volumes in", state))
    }

    fn names(&self) -> Result<Vec<String>> {
        let state = &self.paths.state;
        self.paths
            .names()
            .map_err(state_err("list volumes in", state))
    }

    fn mount(&self, name: &str) -> Result<PathBuf> {
        let record = self
            .read(name)?
            .ok_or_else(|| DriverError::NotFound(name.into()))?;
        let data = self.paths.data(name);
        let Some(mount) = LocalOptions::parse(name, &record.options)?.host_mount(&data) else {
            return Ok(data);
        };
        let _lock = self.lock()?;
        let mount_err = |source| DriverError::Mount {
            volume: name.into(),
            fstype: mount.fstype.clone(),
            target: data.clone(),
            source,
        };
        if self.mounter.is_mounted(&data).map_err(mount_err)? {
            return Ok(data);
        }
        if mount.is_bind() && !Path::new(&mount.source).is_dir() {
            let device = PathBuf::from(&mount.source);
            return Err(DriverError::MissingDevice {
                volume: name.into(),
                device,
            });
        }
        self.mounter.mount(&mount).map_err(mount_err)?;
        Ok(data)
    }

    fn remove(&self, name: &str) -> Result<()> {
        check_name(name)?;
        let _lock = self.lock()?;
        if !self.paths.volume_dir(name).exists() && !self.paths.removing(name).exists() {
            return Ok(());
        }
        self.delete(name)
    }
}

fn check_name(name: &str) -> Result<()> {
    match is_valid_name(name) {
        true => Ok(()),
        false => Err(DriverError::InvalidName(name.into())),
    }
}

fn io_err(volume: &str, what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> DriverError {
    let (volume, path) = (volume.to_string(), path.to_path_buf());
    move |source| DriverError::Io {
        volume,
        what,
        path,
        source,
    }
}

fn state_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> DriverError {
    let path = path.to_path_buf();
    move |source| DriverError::State { what, path, source }
}

#[cfg(test)]
mod tests;
