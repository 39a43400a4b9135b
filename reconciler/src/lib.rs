//! Reconciler: observe the host, plan the difference to a normalized
//! [`rcompose_spec::Project`], apply it. Not built yet: the loader comes first.
