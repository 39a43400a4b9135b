//! Volumes, configs and secrets: the `local` volume driver behind the
//! `VolumeDriver` seam (`driver`, `local`, `store`), the volume operations
//! of `rcompose volume` and the reconciler (`manager`), configs and secrets
//! as files on a tmpfs (`secrets`), service mount planning (`plan`), and the
//! `Mounter` seam over mount(2) (`mounter`).

pub mod driver;
#[cfg(any(test, feature = "testing"))]
pub mod fake;
pub mod local;
pub mod manager;
pub mod mounter;
pub mod plan;
pub mod secrets;
pub mod store;

pub use driver::{DriverError, DriverKind, VolumeDriver, driver_for};
pub use local::{LocalDriver, LocalOptions};
pub use manager::{Pruned, VolumeError, VolumeRequest, Volumes, validate};
pub use mounter::{HostMount, LinuxMounter, Mounter};
pub use secrets::{FileKind, FileRequest, FileSource, ResolvedFile, SecretError, SecretFiles};
pub use store::{VolumePaths, VolumeRecord};
