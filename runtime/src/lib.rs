//! Built-in container runtime (images, rootfs, namespaces, cgroups, monitor).
//!
//! Built so far: image references ([`reference`]). The registry client,
//! content store, rootfs and process isolation come next.

pub mod reference;

pub use reference::{Reference, ReferenceError};
