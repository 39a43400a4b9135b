//! The `VolumeDriver` seam: what a volume driver does (create idempotently,
//! find, list, mount for use, remove), the error every driver returns, and
//! the choice of driver by its Compose name.
//!
//! Invariant: only `local` exists; any other driver name is refused by
//! [`driver_for`], which the planner calls so the error comes before any
//! change is made.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use crate::local::LocalOptions;
use crate::store::VolumeRecord;

/// Label and option maps, as drivers take them.
pub type StringMap = BTreeMap<String, String>;

/// A volume driver.
pub trait VolumeDriver: Send + Sync {
    /// The driver's Compose name (`local`).
    fn name(&self) -> &'static str;
    /// Creates the volume unless it exists; an existing volume is returned
    /// unchanged, whatever `labels` and `options` say.
    fn create(&self, name: &str, labels: &StringMap, options: &StringMap) -> Result<VolumeRecord>;
    /// One volume, `None` when it does not exist.
    fn get(&self, name: &str) -> Result<Option<VolumeRecord>>;
    /// Every volume, sorted by name.
    fn list(&self) -> Result<Vec<VolumeRecord>>;
    /// Every volume's name, sorted (a driver that can should list them
    /// without reading every record).
    fn names(&self) -> Result<Vec<String>> {
        Ok(self.list()?.into_iter().map(|r| r.name).collect())
    }
    /// Makes the volume ready to be bind-mounted into a container (mounting
    /// its driver_opts filesystem if needed) and returns the host path.
    fn mount(&self, name: &str) -> Result<PathBuf>;
    /// Unmounts and deletes the volume; a missing volume is success.
    fn remove(&self, name: &str) -> Result<()>;
}

/// The drivers rcompose has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverKind {
    /// Docker's `local` driver: a directory, optionally with a tmpfs or a
    /// bind mount on it.
    Local,
}

impl DriverKind {
    /// Checks `driver_opts` for this driver without touching the host.
    pub fn check_options(self, volume: &str, options: &StringMap) -> Result<()> {
        match self {
            DriverKind::Local => LocalOptions::parse(volume, options).map(drop),
        }
    }
}

/// The driver named by a volume's `driver:` (`None` or `local`: local).
pub fn driver_for(volume: &str, driver: Option<&str>) -> Result<DriverKind> {
    match driver {
        None | Some("local") => Ok(DriverKind::Local),
        Some(other) => Err(DriverError::UnknownDriver {
            volume: volume.into(),
            driver: other.into(),
        }),
    }
}

/// Why a driver failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// `driver:` names a driver we do not have.
    #[error("volume {volume}: unknown volume driver {driver:?} (only \"local\" is supported)")]
    UnknownDriver {
        /// Volume name.
        volume: String,
        /// The driver asked for.
        driver: String,
    },
    /// The name breaks Docker's naming rule.
    #[error(
        "invalid volume name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at least two characters"
    )]
    InvalidName(String),
    /// `driver_opts` asks for something the local driver does not do.
    #[error("volume {volume}: unsupported driver_opts: {reason}")]
    UnsupportedOptions {
        /// Volume name.
        volume: String,
        /// What is wrong and what is supported.
        reason: String,
    },
    /// The volume does not exist.
    #[error("no such volume {0}")]
    NotFound(String),
    /// The device of a bind volume is missing.
    #[error("volume {volume}: bind device {device} does not exist")]
    MissingDevice {
        /// Volume name.
        volume: String,
        /// The `device` option.
        device: PathBuf,
    },
    /// The volume state directory could not be used.
    #[error("failed to {what} {path}")]
    State {
        /// What we were doing.
        what: &'static str,
        /// Path concerned.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// A file operation on one volume failed.
    #[error("volume {volume}: failed to {what} {path}")]
    Io {
        /// Volume name.
        volume: String,
        /// What we were doing.
        what: &'static str,
        /// Path concerned.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// Mounting the driver_opts filesystem failed.
    #[error("volume {volume}: failed to mount {fstype} on {target}")]
    Mount {
        /// Volume name.
        volume: String,
        /// Filesystem type.
        fstype: String,
        /// Mount point.
        target: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// Unmounting before removal failed; nothing was deleted.
    #[error("volume {volume}: failed to unmount {target}; its content was left in place")]
    Unmount {
        /// Volume name.
        volume: String,
        /// Mount point.
        target: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

/// Result of a driver.
pub type Result<T> = std::result::Result<T, DriverError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_driver_or_local_is_the_local_driver() {
        assert_eq!(driver_for("v", None).unwrap(), DriverKind::Local);
        assert_eq!(driver_for("v", Some("local")).unwrap(), DriverKind::Local);
    }

    #[test]
    fn an_unknown_driver_is_refused_with_the_volume_named() {
        let err = driver_for("shop_data", Some("rexray/ebs")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "volume shop_data: unknown volume driver \"rexray/ebs\" (only \"local\" is supported)"
        );
    }
}
