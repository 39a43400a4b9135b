//! The volume operations behind `rcompose volume ls|inspect|rm|prune` and
//! the reconciler: ensure a stack's volume (or check an external one),
//! create anonymous volumes, remove with an in-use check, prune.
//!
//! Invariants: an `external` volume is never created here; a volume is
//! never removed while the caller says a container uses it. Which
//! containers use a volume is the caller's knowledge (the runtime's
//! records), passed in, so this module stays a pure policy over the
//! [`VolumeDriver`] seam.
//!
//! External volumes and prune: `prune` with a project only considers
//! volumes labelled with that project, which a volume created outside the
//! stack does not carry, so `down -v` or a project prune never removes an
//! external volume. A prune without a project is Docker's global prune.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use crate::driver::{self, DriverError, StringMap, VolumeDriver};
use crate::store::{LABEL_ANONYMOUS, LABEL_DOCKER_ANONYMOUS, VolumeRecord};

/// A volume as a stack file declares it, names resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeRequest {
    /// Full name (`<project>_<key>` or `name:`).
    pub name: String,
    /// `driver:`, `None` for the default.
    pub driver: Option<String>,
    /// `driver_opts:`.
    pub driver_opts: StringMap,
    /// `labels:` plus the project labels.
    pub labels: StringMap,
    /// `external: true`: must exist, never created or removed.
    pub external: bool,
}

/// Checks a request the way [`Volumes::ensure`] will, without the host:
/// for the planner, so a bad driver or option fails before any change.
pub fn validate(request: &VolumeRequest) -> Result<()> {
    if !crate::store::is_valid_name(&request.name) {
        return Err(DriverError::InvalidName(request.name.clone()).into());
    }
    if request.external {
        return Ok(());
    }
    let kind = driver::driver_for(&request.name, request.driver.as_deref())?;
    Ok(kind.check_options(&request.name, &request.driver_opts)?)
}

/// Failures of the volume operations.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// The driver failed.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// An external volume does not exist.
    #[error("volume {0} declared as external could not be found")]
    ExternalMissing(String),
    /// A volume to inspect or remove does not exist.
    #[error("no such volume {0}")]
    NotFound(String),
    /// A volume to remove is used by containers.
    #[error("volume {volume} is in use by {by}")]
    InUse {
        /// Volume name.
        volume: String,
        /// `container a` or `containers a, b`.
        by: String,
    },
    /// No random bytes for an anonymous volume's name.
    #[error("failed to read random bytes for an anonymous volume name")]
    Random(#[source] std::io::Error),
}

impl VolumeError {
    /// Whether the volume was not there (success for best-effort cleanup).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            VolumeError::NotFound(_) | VolumeError::Driver(DriverError::NotFound(_))
        )
    }
}

/// Result of the volume operations.
pub type Result<T> = std::result::Result<T, VolumeError>;

/// What a prune did: volumes removed, and the removals that failed.
#[derive(Debug, Default)]
pub struct Pruned {
    /// Names removed, sorted.
    pub removed: Vec<String>,
    /// Failures; the prune went on past each.
    pub errors: Vec<VolumeError>,
}

/// The volume operations over one driver.
pub struct Volumes<D> {
    driver: D,
}

impl<D: VolumeDriver> Volumes<D> {
    /// Operations over `driver`.
    pub fn new(driver: D) -> Volumes<D> {
        Volumes { driver }
    }

    /// The driver.
    pub fn driver(&self) -> &D {
        &self.driver
    }

    /// Creates the stack's volume unless it exists; for an external one,
    /// checks that it exists.
    pub fn ensure(&self, request: &VolumeRequest) -> Result<VolumeRecord> {
        validate(request)?;
        if request.external {
            return self.ensure_external(&request.name);
        }
        Ok(self
            .driver
            .create(&request.name, &request.labels, &request.driver_opts)?)
    }

    /// The external volume `name`; an error when it does not exist.
    pub fn ensure_external(&self, name: &str) -> Result<VolumeRecord> {
        self.driver
            .get(name)?
            .ok_or_else(|| VolumeError::ExternalMissing(name.into()))
    }

    /// A new anonymous volume: a random 64-hex-digit name, `labels` plus
    /// the anonymous labels. Reusing one across a recreate is the caller's
    /// choice.
    pub fn create_anonymous(&self, labels: &StringMap) -> Result<VolumeRecord> {
        let mut labels = labels.clone();
        labels.insert(LABEL_ANONYMOUS.into(), "true".into());
        labels.insert(LABEL_DOCKER_ANONYMOUS.into(), String::new());
        let name = random_name()?;
        Ok(self.driver.create(&name, &labels, &BTreeMap::new())?)
    }

    /// Makes a volume ready for use and returns its host path.
    pub fn mount(&self, name: &str) -> Result<std::path::PathBuf> {
        Ok(self.driver.mount(name)?)
    }

    /// Every volume, sorted by name.
    pub fn list(&self) -> Result<Vec<VolumeRecord>> {
        Ok(self.driver.list()?)
    }

    /// Every anonymous volume, sorted by name. Only the records of names
    /// that an anonymous volume can have (64 hex digits) are read, so that
    /// removing a container's anonymous volumes does not read every volume.
    pub fn anonymous(&self) -> Result<Vec<VolumeRecord>> {
        let mut out = Vec::new();
        for name in self.driver.names()? {
            if is_anonymous_name(&name)
                && let Some(record) = self.driver.get(&name)?
                && record.is_anonymous()
            {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// One volume.
    pub fn inspect(&self, name: &str) -> Result<VolumeRecord> {
        self.driver
            .get(name)?
            .ok_or_else(|| VolumeError::NotFound(name.into()))
    }

    /// Removes a volume unless `users` (the containers using it, running
    /// or not) is non-empty. A missing volume is [`VolumeError::NotFound`].
    pub fn remove(&self, name: &str, users: &[String]) -> Result<()> {
        self.inspect(name)?;
        if !users.is_empty() {
            return Err(in_use(name, users));
        }
        Ok(self.driver.remove(name)?)
    }

    /// Removes every volume not in `in_use`: only anonymous ones unless
    /// `all`, only those labelled with `project` when given.
    pub fn prune(
        &self,
        all: bool,
        project: Option<&str>,
        in_use: &BTreeSet<String>,
    ) -> Result<Pruned> {
        let mut pruned = Pruned::default();
        for record in self.driver.list()? {
            let wanted = (all || record.is_anonymous())
                && project.is_none_or(|p| record.project() == Some(p))
                && !in_use.contains(&record.name);
            if !wanted {
                continue;
            }
            match self.driver.remove(&record.name) {
                Ok(()) => pruned.removed.push(record.name),
                Err(e) => pruned.errors.push(e.into()),
            }
        }
        Ok(pruned)
    }
}

fn in_use(volume: &str, users: &[String]) -> VolumeError {
    let noun = if users.len() == 1 {
        "container"
    } else {
        "containers"
    };
    VolumeError::InUse {
        volume: volume.into(),
        by: format!("{noun} {}", users.join(", ")),
    }
}

/// 64 random hex digits, as Docker names anonymous volumes.
/// Whether `name` has the shape of [`Volumes::create_anonymous`]'s names.
fn is_anonymous_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn random_name() -> Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(VolumeError::Random)?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests;
