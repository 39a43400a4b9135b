//! Reconciler: observe the host, plan the difference to a normalized
//! normalized `Project`, apply it. The planner is not built yet; what
//! is here is shared by the backends that persist state.

pub mod fsutil;
