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

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, Platform};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::fsutil;
use crate::reference::{Reference, ReferenceError};
use crate::store::{self, ImageRecord, Store, StoreError};
use crate::unpack::{self, Compression};

/// Annotation holding a full image name (containerd, `docker save` ≥ 25).
const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// Media types of an index, OCI and docker.
const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
/// Media types of an image manifest, OCI and docker.
const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
/// How deep indexes may nest (a guard against a hostile chain, not a real limit).
const MAX_NESTING: usize = 8;

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

/// Whether an index entry is for this host (entries without a platform always are).
fn platform_matches(platform: Option<&Platform>) -> bool {
    platform.is_none_or(|p| {
        p.os().to_string() == "linux" && p.architecture().to_string() == host_arch()
    })
}

/// Loads every image of an OCI image layout directory (for this host's platform) and tags it.
///
/// Names come from each manifest's `io.containerd.image.name` or a full
/// `org.opencontainers.image.ref.name` annotation (inherited through nested
/// indexes); `name`, when given, overrides them.
pub fn load_oci_layout(
    store: &Store,
    dir: &Path,
    name: Option<&str>,
) -> Result<Vec<ImageRecord>, LoadError> {
    let layout_path = dir.join("oci-layout");
    let layout: oci_spec::image::OciLayout = read_json(&layout_path)?;
    let version = layout.image_layout_version();
    if !version.starts_with("1.") {
        return Err(LoadError::LayoutVersion {
            path: layout_path,
            version: version.clone(),
        });
    }
    let index: ImageIndex = read_json(&dir.join("index.json"))?;
    let mut found = Vec::new();
    let walk = Walk { dir, name };
    walk.index(&index, None, 0, &mut found)?;
    if found.is_empty() {
        return Err(LoadError::NoImage {
            path: dir.to_path_buf(),
            arch: host_arch(),
        });
    }
    commit(store, &found)
}

/// A walk through the indexes of one layout.
struct Walk<'a> {
    dir: &'a Path,
    name: Option<&'a str>,
}

impl Walk<'_> {
    fn index(
        &self,
        index: &ImageIndex,
        label: Option<&str>,
        depth: usize,
        found: &mut Vec<Candidate>,
    ) -> Result<(), LoadError> {
        for desc in index.manifests() {
            if !platform_matches(desc.platform().as_ref()) {
                continue;
            }
            let label = descriptor_name(desc).or(label);
            let media_type = desc.media_type().as_ref();
            if INDEX_TYPES.contains(&media_type) {
                let digest = desc.digest().to_string();
                if depth >= MAX_NESTING {
                    return Err(LoadError::TooDeep(digest));
                }
                let (path, bytes) = read_blob(self.dir, desc)?;
                let nested: ImageIndex = parse_json(&path, &bytes)?;
                self.index(&nested, label, depth + 1, found)?;
            } else if MANIFEST_TYPES.contains(&media_type) {
                found.push(self.manifest(desc, label)?);
            }
        }
        Ok(())
    }

    fn manifest(&self, desc: &Descriptor, label: Option<&str>) -> Result<Candidate, LoadError> {
        let digest = desc.digest().to_string();
        let names = vec![reference_for(self.name, label, &digest)?];
        let (path, bytes) = read_blob(self.dir, desc)?;
        let manifest: ImageManifest = parse_json(&path, &bytes)?;
        let (_, config) = read_blob(self.dir, manifest.config())?;
        let layers = manifest
            .layers()
            .iter()
            .map(|d| self.layer(d))
            .collect::<Result<Vec<_>, _>>()?;
        let config_digest = manifest.config().digest().to_string();
        Candidate::new(names, bytes, config_digest, config, layers)
    }

    fn layer(&self, desc: &Descriptor) -> Result<LayerFile, LoadError> {
        let (path, digest) = blob_path(self.dir, desc)?;
        let actual = hash_file(&path)?;
        check_blob(&path, desc, &digest, &actual)?;
        let compression = match Compression::from_media_type(desc.media_type().as_ref()) {
            Compression::None => sniff_file(&path)?,
            known => known,
        };
        Ok(LayerFile {
            path,
            compression,
            digest,
            size: desc.size(),
        })
    }
}

/// The name annotation of a descriptor: containerd's full name first.
fn descriptor_name(desc: &Descriptor) -> Option<&str> {
    let annotations = desc.annotations().as_ref()?;
    annotations
        .get(CONTAINERD_NAME)
        .or_else(|| annotations.get(oci_spec::image::ANNOTATION_REF_NAME))
        .map(String::as_str)
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

/// Path of a descriptor's blob in a layout, and its digest.
fn blob_path(dir: &Path, desc: &Descriptor) -> Result<(PathBuf, String), LoadError> {
    let digest = desc.digest().to_string();
    let hex =
        store::digest_hex(&digest).map_err(|_| LoadError::UnsupportedDigest(digest.clone()))?;
    Ok((dir.join("blobs/sha256").join(hex), digest))
}

/// Reads a small blob (index, manifest, config) and verifies it.
fn read_blob(dir: &Path, desc: &Descriptor) -> Result<(PathBuf, Vec<u8>), LoadError> {
    let (path, digest) = blob_path(dir, desc)?;
    let len = fs::metadata(&path).map_err(read_err(&path))?.len();
    // Checked before reading so that a bogus file is never pulled into memory.
    if len != desc.size() {
        return Err(LoadError::BlobSize {
            path,
            expected: desc.size(),
            actual: len,
        });
    }
    let bytes = fs::read(&path).map_err(read_err(&path))?;
    let actual = Hashed {
        digest: store::sha256_digest(&bytes),
        size: len,
    };
    check_blob(&path, desc, &digest, &actual)?;
    Ok((path, bytes))
}

fn check_blob(
    path: &Path,
    desc: &Descriptor,
    digest: &str,
    actual: &Hashed,
) -> Result<(), LoadError> {
    if actual.size != desc.size() {
        return Err(LoadError::BlobSize {
            path: path.to_path_buf(),
            expected: desc.size(),
            actual: actual.size,
        });
    }
    if actual.digest != digest {
        return Err(LoadError::BlobDigest {
            path: path.to_path_buf(),
            expected: digest.to_string(),
            actual: actual.digest.clone(),
        });
    }
    Ok(())
}

/// Digest and size of some content.
#[derive(Clone, Debug)]
struct Hashed {
    digest: String,
    size: u64,
}

/// A writer that hashes and counts what goes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    fn finish(mut self) -> io::Result<Hashed> {
        self.inner.flush()?;
        Ok(Hashed {
            digest: format!("sha256:{}", hex::encode(self.hasher.finalize())),
            size: self.size,
        })
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hash_file(path: &Path) -> Result<Hashed, LoadError> {
    let mut file = File::open(path).map_err(read_err(path))?;
    let mut hashing = HashingWriter::new(io::sink());
    io::copy(&mut file, &mut hashing).map_err(read_err(path))?;
    hashing.finish().map_err(read_err(path))
}

/// Reads up to four bytes to guess the compression; returns a reader that still yields them.
fn sniff_stream<R: Read>(mut reader: R) -> io::Result<(Compression, impl Read)> {
    let mut head = [0u8; 4];
    let mut filled = 0;
    while filled < head.len() {
        match reader.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let compression = Compression::sniff(&head[..filled]);
    Ok((
        compression,
        io::Cursor::new(head[..filled].to_vec()).chain(reader),
    ))
}

fn sniff_file(path: &Path) -> Result<Compression, LoadError> {
    let file = File::open(path).map_err(read_err(path))?;
    Ok(sniff_stream(file).map_err(read_err(path))?.0)
}

fn decoder<'a>(reader: impl Read + 'a, compression: Compression) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(reader)?),
    })
}

/// A path under `<store>/tmp/`, removed (file or tree) when dropped.
struct TempPath(PathBuf);

impl TempPath {
    fn new(store: &Store, kind: &str) -> Result<TempPath, LoadError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = store.dir().join("tmp");
        fs::create_dir_all(&dir).map_err(temp_err(&dir))?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{kind}-{}-{n}", std::process::id()));
        // A leftover of a crashed process that had our pid.
        let temp = TempPath(path);
        temp.remove();
        Ok(temp)
    }

    fn remove(&self) {
        let _ = fsutil::remove_dir_all_if_exists(&self.0);
        let _ = fs::remove_file(&self.0);
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        self.remove();
    }
}

/// One image of a `docker save` `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerImage {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Loads every image of a `docker save` tarball (plain, gzip or zstd) and
/// tags it: under all its `RepoTags`, or `name` when given.
pub fn load_docker_archive(
    store: &Store,
    tar: impl Read,
    name: Option<&str>,
) -> Result<Vec<ImageRecord>, LoadError> {
    let spool = TempPath::new(store, "load")?;
    let dir = &spool.0;
    fs::create_dir(dir).map_err(temp_err(dir))?;
    // `docker load` takes compressed archives too.
    let (compression, tar) = sniff_stream(tar).map_err(LoadError::Archive)?;
    let tar = decoder(tar, compression).map_err(LoadError::Archive)?;
    let files = spool_archive(tar, dir)?;
    let manifest_path = dir.join("manifest.json");
    if !files.contains_key(Path::new("manifest.json")) {
        if files.contains_key(Path::new("index.json")) {
            return load_oci_layout(store, dir, name);
        }
        return Err(LoadError::NotAnArchive);
    }
    let images: Vec<DockerImage> = read_json(&manifest_path)?;
    if images.is_empty() {
        return Err(LoadError::EmptyArchive);
    }
    let candidates = images
        .iter()
        .map(|image| docker_candidate(dir, &files, image, name))
        .collect::<Result<Vec<_>, _>>()?;
    commit(store, &candidates)
}

fn docker_candidate(
    dir: &Path,
    files: &HashMap<PathBuf, Hashed>,
    image: &DockerImage,
    name: Option<&str>,
) -> Result<Candidate, LoadError> {
    let (config_path, _) = archive_file(dir, files, &image.config)?;
    let config = fs::read(&config_path).map_err(read_err(&config_path))?;
    let config_digest = store::sha256_digest(&config);
    let names = match name {
        Some(name) => vec![parse_name(name)?],
        None => image
            .repo_tags
            .iter()
            .flatten()
            .map(|tag| parse_name(tag))
            .collect::<Result<Vec<_>, _>>()?,
    };
    if names.is_empty() {
        return Err(LoadError::Unnamed(config_digest));
    }
    let mut layers = Vec::new();
    for raw in &image.layers {
        let (path, hashed) = archive_file(dir, files, raw)?;
        layers.push(LayerFile {
            compression: sniff_file(&path)?,
            path,
            digest: hashed.digest,
            size: hashed.size,
        });
    }
    let manifest = manifest_for(&config_digest, config.len(), &layers);
    Candidate::new(names, manifest, config_digest, config, layers)
}

/// A file `manifest.json` names, as spooled.
fn archive_file(
    dir: &Path,
    files: &HashMap<PathBuf, Hashed>,
    raw: &str,
) -> Result<(PathBuf, Hashed), LoadError> {
    archive_path(Path::new(raw))
        .and_then(|rel| Some((dir.join(&rel), files.get(&rel)?.clone())))
        .ok_or_else(|| LoadError::MissingEntry(raw.to_string()))
}

/// An archive path made relative to the spool root, `..` resolved lexically.
fn archive_path(raw: &Path) -> Option<PathBuf> {
    let clean = unpack::clean_path(raw)?;
    Some(clean.strip_prefix("/").ok()?.to_path_buf())
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

/// Writes an archive's regular files under `dir` (links become hard links); returns their hashes.
fn spool_archive(tar: impl Read, dir: &Path) -> Result<HashMap<PathBuf, Hashed>, LoadError> {
    let mut files = HashMap::new();
    let mut links = Vec::new();
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().map_err(LoadError::Archive)? {
        let mut entry = entry.map_err(LoadError::Archive)?;
        let Some(rel) = archive_path(&entry.path().map_err(LoadError::Archive)?) else {
            continue;
        };
        let kind = entry.header().entry_type();
        let target = entry.link_name().map_err(LoadError::Archive)?;
        match (kind, target) {
            (tar::EntryType::Regular | tar::EntryType::Continuous, _) => {
                let hashed = spool_file(&mut entry, &dir.join(&rel))?;
                files.insert(rel, hashed);
            }
            // Old `docker save` links duplicate layers: `../<id>/layer.tar`.
            (tar::EntryType::Symlink, Some(target)) => {
                let base = rel.parent().unwrap_or(Path::new(""));
                links.extend(archive_path(&base.join(target)).map(|t| (rel, t)));
            }
            (tar::EntryType::Link, Some(target)) => {
                links.extend(archive_path(&target).map(|t| (rel, t)));
            }
            _ => {}
        }
    }
    link_spooled(dir, &mut files, links);
    Ok(files)
}

fn spool_file(entry: &mut impl Read, path: &Path) -> Result<Hashed, LoadError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(temp_err(parent))?;
    }
    let file = File::create(path).map_err(temp_err(path))?;
    let mut writer = HashingWriter::new(BufWriter::new(file));
    io::copy(entry, &mut writer).map_err(LoadError::Archive)?;
    writer.finish().map_err(temp_err(path))
}

/// Materializes links as hard links to spooled files, so that the spool is a
/// plain tree; a link whose target never appears stays missing.
fn link_spooled(
    dir: &Path,
    files: &mut HashMap<PathBuf, Hashed>,
    mut links: Vec<(PathBuf, PathBuf)>,
) {
    // Targets may come later in the archive or be links themselves: repeat
    // until a pass resolves nothing more.
    loop {
        let before = links.len();
        links.retain(|(link, target)| {
            let Some(hashed) = files.get(target).cloned() else {
                return true;
            };
            let path = dir.join(link);
            if let Some(parent) = path.parent() {
                let _ = fs::create_dir_all(parent);
            }
            let linked = fs::hard_link(dir.join(target), &path).is_ok();
            if linked {
                files.insert(link.clone(), hashed);
            }
            !linked
        });
        if links.is_empty() || links.len() == before {
            break;
        }
    }
}

/// Imports a root filesystem tarball (plain, gzip or zstd) as a one-layer image named `name`.
pub fn import_rootfs(
    store: &Store,
    tar: impl Read,
    name: &str,
    config: ImportConfig,
) -> Result<ImageRecord, LoadError> {
    let reference = parse_name(name)?;
    let spool = TempPath::new(store, "import")?;
    let hashed = spool_rootfs(tar, &spool.0)?;
    let created = SystemTime::now();
    let image_config = import_config(&config, &hashed.digest, created)
        .to_string()
        .into_bytes();
    let config_digest = store::sha256_digest(&image_config);
    let layer = LayerFile {
        path: spool.0.clone(),
        compression: Compression::None,
        digest: hashed.digest,
        size: hashed.size,
    };
    let manifest = manifest_for(
        &config_digest,
        image_config.len(),
        std::slice::from_ref(&layer),
    );
    let candidate = Candidate::new(
        vec![reference],
        manifest,
        config_digest,
        image_config,
        vec![layer],
    )?;
    let mut records = commit(store, std::slice::from_ref(&candidate))?;
    // One name, one record.
    Ok(records.remove(0))
}

/// Decompresses the tarball into `path`, hashing the plain tar (the diff id).
fn spool_rootfs(tar: impl Read, path: &Path) -> Result<Hashed, LoadError> {
    let fail = |source| LoadError::Rootfs {
        path: path.to_path_buf(),
        source,
    };
    let (compression, reader) = sniff_stream(tar).map_err(fail)?;
    let mut reader = decoder(reader, compression).map_err(fail)?;
    let file = File::create(path).map_err(temp_err(path))?;
    let mut writer = HashingWriter::new(BufWriter::new(file));
    io::copy(&mut reader, &mut writer).map_err(fail)?;
    writer.finish().map_err(fail)
}

/// The image config of an imported rootfs.
fn import_config(config: &ImportConfig, diff_id: &str, created: SystemTime) -> serde_json::Value {
    let mut process = serde_json::Map::new();
    let mut set = |key: &str, value: serde_json::Value| {
        process.insert(key.to_string(), value);
    };
    if let Some(cmd) = &config.cmd {
        set("Cmd", cmd.clone().into());
    }
    if let Some(entrypoint) = &config.entrypoint {
        set("Entrypoint", entrypoint.clone().into());
    }
    if !config.env.is_empty() {
        set("Env", config.env.clone().into());
    }
    if let Some(dir) = &config.working_dir {
        set("WorkingDir", dir.clone().into());
    }
    let created = crate::logs::format_rfc3339(created);
    serde_json::json!({
        "created": created,
        "architecture": host_arch(),
        "os": "linux",
        "config": process,
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created": created, "created_by": "rcompose image import" }],
    })
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

    #[test]
    fn only_linux_entries_for_the_host_architecture_match() {
        let platform = |os: &str, arch: &str| {
            oci_spec::image::PlatformBuilder::default()
                .os(os)
                .architecture(arch)
                .build()
                .unwrap()
        };
        assert!(platform_matches(None));
        assert!(platform_matches(Some(&platform("linux", host_arch()))));
        assert!(!platform_matches(Some(&platform("windows", host_arch()))));
        assert!(!platform_matches(Some(&platform("linux", "s390x"))));
        assert!(!platform_matches(Some(&platform("unknown", "unknown"))));
    }

    #[test]
    fn sniffing_a_stream_keeps_its_first_bytes() {
        let (compression, mut reader) = sniff_stream(&[0x1f, 0x8b, 8, 0, 1, 2][..]).unwrap();
        assert_eq!(compression, Compression::Gzip);
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        assert_eq!(all, [0x1f, 0x8b, 8, 0, 1, 2]);
        let (compression, mut reader) = sniff_stream(&b"ab"[..]).unwrap();
        assert_eq!(compression, Compression::None);
        all.clear();
        reader.read_to_end(&mut all).unwrap();
        assert_eq!(all, b"ab");
    }

    #[test]
    fn archive_paths_never_leave_the_spool() {
        let path = |raw: &str| archive_path(Path::new(raw));
        assert_eq!(path("../../etc/passwd"), Some(PathBuf::from("etc/passwd")));
        assert_eq!(path("/abc/layer.tar"), Some(PathBuf::from("abc/layer.tar")));
        assert_eq!(path("abc/../../x"), Some(PathBuf::from("x")));
        assert_eq!(path("./"), None);
    }

    #[test]
    fn an_import_config_carries_only_the_given_settings() {
        let config = ImportConfig {
            cmd: Some(vec!["/bin/sh".into()]),
            env: vec!["A=1".into()],
            ..ImportConfig::default()
        };
        let value = import_config(&config, "sha256:00", UNIX_EPOCH);
        assert_eq!(value["config"]["Cmd"], serde_json::json!(["/bin/sh"]));
        assert_eq!(value["config"]["Env"], serde_json::json!(["A=1"]));
        assert!(value["config"].get("Entrypoint").is_none());
        assert_eq!(value["rootfs"]["diff_ids"][0], "sha256:00");
        assert_eq!(value["created"], "1970-01-01T00:00:00.000000000Z");
    }
}
