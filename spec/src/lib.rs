//! The Compose stack-file model and loader of rcompose.
//!
//! Pipeline: read files → [`yaml`] tree → interpolate (per file) → merge →
//! `extends` / `include` / profiles → normalize → validate → typed [`Project`].

pub mod yaml;
