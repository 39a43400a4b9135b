//! The Compose stack-file model and loader of rcompose.
//!
//! Pipeline: read files → [`yaml`] tree → interpolate (per file) → merge →
//! `extends` / `include` / profiles → normalize → validate → typed [`Project`].

pub mod diag;
pub mod dotenv;
pub mod interpolate;
pub mod load;
pub mod merge;
pub mod model;
pub mod normalize;
pub mod paths;
pub mod project;
pub mod resolve;
pub mod validate;
pub mod yaml;

pub use diag::{Diagnostic, Diagnostics};
pub use load::{LoadError, LoadOptions};
pub use model::Project;
pub use project::{Loaded, config_hash, config_json, load};
pub mod emit;

/// The JSON Schema of the stack file as pretty JSON (`rcompose schema`).
pub fn schema_json() -> String {
    serde_json::to_string_pretty(&model::stack_file_schema()).unwrap_or_default()
}
