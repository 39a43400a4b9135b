//! Offline image loading into the [`Store`]: `rcompose image load` and
//! `rcompose image import`.
//!
//! Formats:
//! - an OCI image layout directory (`oci-layout`, `index.json`,
//!   `blobs/sha256/…`), nested indexes followed and narrowed to linux on the
//!   host architecture;
//! - a `docker save` tarball, plain or compressed (`manifest.json` with
//!   `Config`, `RepoTags` and `Layers`), or one that holds only an OCI layout;
//! - a root filesystem tarball (plain, gzip or zstd), imported as a one-layer
//!   image with a config built from [`ImportConfig`].
//!
//! Invariants:
//! - Every blob is verified before it is used: layout blobs against their
//!   descriptor's sha256 and size, configs of archives by hashing them into
//!   their id, and every layer's uncompressed stream against its diff id (by
//!   [`Store::add_layer`]).
//! - Nothing is tagged until every image of the load has its config, manifest
//!   and all layers in the store; a failure leaves at most unreferenced
//!   content for the next prune.
//! - Archives are spooled under `<store>/tmp/` (entries come in any order) and
//!   the spool is removed on every exit path; no archive path or link
//!   resolves outside the spool directory.
//!
//! Layout: `oci` reads image layouts, `docker` spools and reads `docker save`
//! archives, `import` builds an image from a rootfs tarball, and `stream`
//! holds the byte plumbing they share (hashing, compression, temporary
//! paths). This file owns the error type and what every format ends in: a
//! verified `Candidate` committed to the store.

mod docker;
mod import;
mod oci;
mod stream;

use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use oci_spec::image::ImageConfiguration;

use crate::reference::{Reference, ReferenceError};
use crate::store::{self, ImageRecord, Store, StoreError};
use crate::unpack::Compression;

pub use docker::load_docker_archive;
pub use import::import_rootfs;
pub use oci::load_oci_layout;

/// Media types of an image manifest, OCI and docker.
const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// What `docker import`-style options put into the built image config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportConfig {
    /// `Cmd`.
    pub cmd: Option<Vec<String>>,
    /// `Entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// `Env` (`KEY=value`).
    pub env: Vec<String>,
    /// `WorkingDir`.
    pub working_dir: Option<String>,
}

/// Why a load or import failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The `oci-layout` file names a version we do not read.
    #[error("{path}: unsupported oci layout version {version:?}")]
    LayoutVersion {
        /// The `oci-layout` file.
        path: PathBuf,
        /// Version found.
        version: String,
    },
    /// A file of the layout or archive could not be read.
    #[error("failed to read {path}")]
    Read {
        /// File concerned.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// A JSON file (index, manifest, `manifest.json`) is malformed.
    #[error("invalid json in {path}")]
    Json {
        /// File concerned.
        path: PathBuf,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// A descriptor's digest is not `sha256:<64 hex>`.
    #[error("unsupported digest {0:?}")]
    UnsupportedDigest(String),
    /// A blob's size differs from its descriptor.
    #[error("blob {path} has {actual} bytes but its descriptor says {expected}")]
    BlobSize {
        /// Blob file.
        path: PathBuf,
        /// Size from the descriptor.
        expected: u64,
        /// Size on disk.
        actual: u64,
    },
    /// A blob's content does not hash to its digest.
    #[error("blob {path} does not match its digest {expected} (got {actual})")]
    BlobDigest {
        /// Blob file.
        path: PathBuf,
        /// Digest from the descriptor.
        expected: String,
        /// Digest of the content.
        actual: String,
    },
    /// Indexes nest deeper than a layout plausibly needs.
    #[error("image index {0} nests too deeply")]
    TooDeep(String),
    /// The layout lists no image for this platform.
    #[error("{path} holds no image for linux/{arch}")]
    NoImage {
        /// The layout directory.
        path: PathBuf,
        /// Host architecture.
        arch: &'static str,
    },
    /// An image has no full name and none was given.
    #[error("image {0} has no full name (at most a tag): give one")]
    Unnamed(String),
    /// A name (given or from the archive) is not a valid reference.
    #[error("invalid image name {name:?}")]
    Name {
        /// The name.
        name: String,
        /// Cause.
        #[source]
        source: ReferenceError,
    },
    /// An image config is not valid JSON of an OCI image config.
    #[error("invalid image config {digest}")]
    Config {
        /// Config digest.
        digest: String,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// The manifest and the config disagree on the number of layers.
    #[error("image {digest}: {layers} layers but the config has {diff_ids} diff ids")]
    LayerCount {
        /// Config digest.
        digest: String,
        /// Layers listed.
        layers: usize,
        /// Diff ids in the config.
        diff_ids: usize,
    },
    /// Storing content failed.
    #[error("failed to store {what}")]
    Store {
        /// What was being stored (`layer sha256:…`).
        what: String,
        /// Cause.
        #[source]
        source: StoreError,
    },
    /// The archive stream is not a readable (compressed) tar, or could not be spooled.
    #[error("failed to read and spool the image archive")]
    Archive(#[source] io::Error),
    /// A temporary file or directory could not be written.
    #[error("failed to write temporary {path}")]
    Temp {
        /// Temporary path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The archive has neither `manifest.json` nor `index.json`.
    #[error("the archive has neither manifest.json nor index.json")]
    NotAnArchive,
    /// `manifest.json` refers to a file the archive does not hold.
    #[error("the archive has no file {0:?}")]
    MissingEntry(String),
    /// `manifest.json` lists no image.
    #[error("manifest.json of the archive lists no image")]
    EmptyArchive,
    /// The rootfs tarball could not be read, decompressed or spooled.
    #[error("failed to spool the rootfs tarball to {path}")]
    Rootfs {
        /// Spool file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

fn read_err(path: &Path) -> impl FnOnce(io::Error) -> LoadError + '_ {
    move |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    }
}

fn temp_err(path: &Path) -> impl FnOnce(io::Error) -> LoadError + '_ {
    move |source| LoadError::Temp {
        path: path.to_path_buf(),
        source,
    }
}

fn store_err(what: String) -> impl FnOnce(StoreError) -> LoadError {
    move |source| LoadError::Store { what, source }
}

/// One image ready to store: blobs verified, names resolved, layers on disk.
struct Candidate {
    names: Vec<String>,
    manifest: Vec<u8>,
    config_digest: String,
    config: Vec<u8>,
    diff_ids: Vec<String>,
    layers: Vec<LayerFile>,
}

/// A layer blob on disk.
struct LayerFile {
    path: PathBuf,
    compression: Compression,
    digest: String,
    size: u64,
}

impl Candidate {
    /// Checks the config against the layers.
    fn new(
        names: Vec<String>,
        manifest: Vec<u8>,
        config_digest: String,
        config: Vec<u8>,
        layers: Vec<LayerFile>,
    ) -> Result<Candidate, LoadError> {
        let parsed: ImageConfiguration =
            serde_json::from_slice(&config).map_err(|source| LoadError::Config {
                digest: config_digest.clone(),
                source,
            })?;
        let diff_ids = parsed.rootfs().diff_ids().clone();
        if diff_ids.len() != layers.len() {
            return Err(LoadError::LayerCount {
                digest: config_digest,
                layers: layers.len(),
                diff_ids: diff_ids.len(),
            });
        }
        Ok(Candidate {
            names,
            manifest,
            config_digest,
            config,
            diff_ids,
            layers,
        })
    }
}

/// Stores every candidate's content, then tags them all.
fn commit(store: &Store, candidates: &[Candidate]) -> Result<Vec<ImageRecord>, LoadError> {
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut records = Vec::new();
    for candidate in candidates {
        records.extend(store_content(store, candidate, created)?);
    }
    for record in &records {
        let what = format!("image {}", record.reference);
        store.tag(record.clone()).map_err(store_err(what))?;
    }
    Ok(records)
}

/// Puts one candidate's blobs and layers into the store; returns its untagged records.
fn store_content(
    store: &Store,
    c: &Candidate,
    created: u64,
) -> Result<Vec<ImageRecord>, LoadError> {
    let config_what = format!("config {}", c.config_digest);
    store
        .put_blob(&c.config_digest, &c.config)
        .map_err(store_err(config_what))?;
    let manifest_digest = store::sha256_digest(&c.manifest);
    let manifest_what = format!("manifest {manifest_digest}");
    store
        .put_blob(&manifest_digest, &c.manifest)
        .map_err(store_err(manifest_what))?;
    for (layer, diff_id) in c.layers.iter().zip(&c.diff_ids) {
        let file = File::open(&layer.path).map_err(read_err(&layer.path))?;
        store
            .add_layer(BufReader::new(file), layer.compression, diff_id)
            .map_err(store_err(format!("layer {}", layer.digest)))?;
    }
    let record = |reference: &String| ImageRecord {
        reference: reference.clone(),
        id: c.config_digest.clone(),
        manifest_digest: manifest_digest.clone(),
        repo_digest: None,
        layers: c.diff_ids.clone(),
        size: c.layers.iter().map(|l| l.size).sum(),
        created,
    };
    Ok(c.names.iter().map(record).collect())
}

/// The normalized reference of `name`.
fn parse_name(name: &str) -> Result<String, LoadError> {
    Reference::parse(name)
        .map(|r| r.to_string())
        .map_err(|source| LoadError::Name {
            name: name.to_string(),
            source,
        })
}

/// The reference an image gets: the given name, else its label unless that is only a tag.
fn reference_for(
    given: Option<&str>,
    label: Option<&str>,
    image: &str,
) -> Result<String, LoadError> {
    match (given, label) {
        (Some(name), _) => parse_name(name),
        (None, Some(label)) if label.contains(['/', ':', '@']) => parse_name(label),
        _ => Err(LoadError::Unnamed(image.to_string())),
    }
}

/// The Go architecture name of the host (`amd64`, `arm64`, …).
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, LoadError> {
    let bytes = fs::read(path).map_err(read_err(path))?;
    parse_json(path, &bytes)
}

fn parse_json<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, LoadError> {
    serde_json::from_slice(bytes).map_err(|source| LoadError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// An OCI manifest for content that came without one (a docker archive, an import).
fn manifest_for(config_digest: &str, config_size: usize, layers: &[LayerFile]) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|layer| {
            let media_type = match layer.compression {
                Compression::None => "application/vnd.oci.image.layer.v1.tar",
                Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
                Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            };
            serde_json::json!({ "mediaType": media_type, "digest": layer.digest, "size": layer.size })
        })
        .collect();
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPES[0],
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": layers,
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_tag_needs_a_given_name_and_a_full_name_does_not() {
        let full = reference_for(None, Some("example.com/app:1.0"), "m").unwrap();
        assert_eq!(full, "example.com/app:1.0");
        let short = reference_for(None, Some("busybox:1"), "m").unwrap();
        assert_eq!(short, "docker.io/library/busybox:1");
        assert!(matches!(
            reference_for(None, Some("1.0"), "m"),
            Err(LoadError::Unnamed(_))
        ));
        assert!(matches!(
            reference_for(None, None, "m"),
            Err(LoadError::Unnamed(_))
        ));
        let given = reference_for(Some("app:2"), Some("other:1"), "m").unwrap();
        assert_eq!(given, "docker.io/library/app:2");
    }
}
