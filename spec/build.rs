//! Computes `RCOMPOSE_SCHEMA_KEY`: a digest of this crate's sources and of the
//! workspace's lock file, which decide what the stack-file schema accepts.
//! The loader keys its cache of documents that passed the schema with it, so
//! a build that may validate differently never trusts an older build's entry.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let mut inputs = Vec::new();
    files(&manifest.join("src"), &mut inputs);
    inputs.push(manifest.join("Cargo.toml"));
    inputs.push(manifest.join("../Cargo.lock"));
    inputs.sort();
    let mut hasher = DefaultHasher::new();
    for path in &inputs {
        path.strip_prefix(&manifest)
            .unwrap_or(path)
            .hash(&mut hasher);
        std::fs::read(path).unwrap_or_default().hash(&mut hasher);
    }
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.toml");
    println!("cargo:rerun-if-changed=../Cargo.lock");
    println!(
        "cargo:rustc-env=RCOMPOSE_SCHEMA_KEY={}-{:016x}",
        std::env::var("CARGO_PKG_VERSION").unwrap_or_default(),
        hasher.finish()
    );
}
