//! Reconciler: observe the host, plan the difference to a normalized
//! `Project`, apply it.
//!
//! This slice holds the backend seams ([`backend`]), the desired state
//! derived from a project ([`desired`]) and the pure planner ([`mod@plan`]);
//! the apply executor comes next. [`fsutil`] is shared by the backends that
//! persist state.

pub mod backend;
pub mod desired;
#[cfg(any(test, feature = "testing"))]
pub mod fake;
pub mod fsutil;
pub mod plan;

pub use backend::{
    BackendError, ContainerBackend, ContainerSpec, ContainerStatus, Health, ImageBackend, NetworkBackend,
    NetworkConfig, NetworkSpec, ObservedContainer, ObservedNetwork, ObservedState, ObservedVolume,
    VolumeBackend, VolumeConfig, VolumeSpec, observe,
};
pub use desired::{Desired, DesiredNetwork, DesiredService, DesiredVolume, Replica};
pub use plan::{Action, Change, Op, Plan, PlanOptions, PullPolicy, plan};
