//! End-to-end tests of the `rcompose` binary, run as a user runs it. The
//! binary is built by `cargo test --workspace --all-targets` (the README's test
//! command). Tests that need root (runtime, networking) arrive with `up`.

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The built `rcompose` binary next to this crate's test executables.
pub fn rcompose_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test> → target/<profile>/rcompose
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    dir.join("rcompose")
}
