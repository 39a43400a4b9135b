//! Reconciler: observe the host, plan the difference to a normalized
//! `Project`, apply it.
//!
//! This slice holds the backend seams ([`backend`]), the desired state
//! derived from a project ([`desired`]), the pure planner ([`mod@plan`]) and
//! the executor that applies a plan ([`mod@apply`]). [`fsutil`] is shared
//! by the backends that persist state.

pub mod apply;
pub mod backend;
pub mod controller;
pub mod desired;
#[cfg(any(test, feature = "testing"))]
pub mod fake;
pub mod fsutil;
pub mod history;
pub mod lock;
pub mod plan;
pub mod planfile;
pub mod render;
#[cfg(test)]
mod test_support;
pub mod wait;

pub use apply::{ApplyError, ApplyOptions, Event, Report, WaitError, apply, wait_ready};
pub use backend::{
    BackendError, ContainerBackend, ContainerSpec, ContainerStatus, Health, ImageBackend,
    NetworkBackend, NetworkConfig, NetworkSpec, ObservedContainer, ObservedNetwork, ObservedState,
    ObservedVolume, VolumeBackend, VolumeConfig, VolumeSpec, observe,
};
pub use desired::{
    Condition, Dependency, Desired, DesiredNetwork, DesiredService, DesiredVolume, Replica,
};
pub use lock::{LockError, ProjectLock};
pub use plan::{Action, Change, Op, Plan, PlanOptions, PullPolicy, plan};
pub use plan::{DownOptions, plan_down};
pub use planfile::{
    Fingerprint, PlanFile, PlanFileError, StaleError, fingerprint_inputs, fingerprint_observed,
};
pub use render::{PLAN_SCHEMA_VERSION, render_human, render_json, render_markdown};
