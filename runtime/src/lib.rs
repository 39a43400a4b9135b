//! Built-in container runtime: image references, registry client, content
//! store, layer unpack, rootfs, OCI runtime spec generation, the per-container
//! monitor (logs, restart policy, healthchecks) and container lifecycle.

pub mod auth;
pub mod cgroups;
pub mod config;
pub mod container;
pub mod copyup;
pub use rcompose_reconciler::fsutil;
pub mod health;
pub mod init;
pub mod load;
pub mod logs;
pub mod manager;
pub mod monitor;
pub mod oci;
pub mod prepare;
pub mod probe;
pub mod reference;
pub mod registry;
pub mod restart;
pub mod rootfs;
pub mod seccomp_filter;
pub mod spec;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod top;
pub mod tty;
pub mod unpack;

pub use config::{ContainerConfig, Healthcheck, MountSpec, RestartPolicy};
pub use reference::{Reference, ReferenceError};
