//! The content-addressed image store under the state root.
//!
//! On-disk layout (`<root>/images/`):
//!
//! ```text
//! blobs/sha256/<hex>     manifests and image configs, verified against their digest
//! layers/<hex>/          one unpacked layer per diff id (overlay whiteouts), shared by images
//! layers/.tmp-<hex>-<pid> a layer being unpacked; renamed into place when complete
//! images.json            { "<normalized reference>": ImageRecord }
//! lock                   flock taken by every mutation
//! ```
//!
//! Invariants: a directory `layers/<hex>` exists only when its content hashed
//! to `sha256:<hex>`; `images.json` is replaced atomically; nothing that a
//! tagged image or a caller-declared user (a container) refers to is pruned.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::fsutil;
use crate::unpack::{self, Compression, Mode};

/// What the store knows of one tagged image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Normalized reference (`docker.io/library/busybox:latest`).
    pub reference: String,
    /// Image id: the digest of its config blob.
    pub id: String,
    /// Digest of the image manifest (platform-specific).
    pub manifest_digest: String,
    /// Digest the registry gave for the reference (the index digest for multi-platform images).
    pub repo_digest: Option<String>,
    /// Layer diff ids, bottom first.
    pub layers: Vec<String>,
    /// Sum of the compressed layer sizes, in bytes.
    pub size: u64,
    /// When the image was stored (seconds since the epoch).
    pub created: u64,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Filesystem error on a store path.
    #[error("image store: failed to access {path}")]
    Io {
        /// Path concerned.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// A blob's content does not match its digest.
    #[error("image store: content of {path} does not match digest {expected} (got {actual})")]
    DigestMismatch {
        /// What was being stored.
        path: String,
        /// Expected digest.
        expected: String,
        /// Computed digest.
        actual: String,
    },
    /// A digest is not `sha256:<64 hex>`.
    #[error("image store: unsupported digest {0:?}")]
    BadDigest(String),
    /// A layer could not be unpacked.
    #[error("image store: failed to unpack layer {diff_id}")]
    Unpack {
        /// Layer diff id.
        diff_id: String,
        /// Cause.
        #[source]
        source: unpack::UnpackError,
    },
    /// No image by that reference or id.
    #[error("no such image: {0}")]
    NoSuchImage(String),
    /// The image is used by a container.
    #[error("image {reference} is in use by container {container}")]
    InUse {
        /// The image.
        reference: String,
        /// One container using it.
        container: String,
    },
    /// The image config blob is not valid JSON of an OCI image config.
    #[error("image store: invalid image config {digest}")]
    Config {
        /// Config digest.
        digest: String,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Hex part of a `sha256:` digest, checked for form.
pub fn digest_hex(digest: &str) -> Result<&str, StoreError> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| StoreError::BadDigest(digest.to_string()))
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Renames the directory `tmp` to `path`. When someone else finished the
/// same content first (the store's directories are named by what they
/// hold), theirs is as good: `tmp` is dropped.
fn move_into_place(tmp: &Path, path: PathBuf) -> Result<PathBuf, StoreError> {
    match fs::rename(tmp, &path) {
        Ok(()) => Ok(path),
        Err(_) if path.is_dir() => {
            let _ = fs::remove_dir_all(tmp);
            Ok(path)
        }
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// Directories of [`Store::skeleton`], mode 0755 (every container gets
/// `/proc`, `/sys` and `/dev` mounted; `/etc` holds the files below).
pub const SKELETON_DIRS: &[&str] = &["proc", "sys", "dev", "etc"];
/// Empty files of [`Store::skeleton`] (what `/etc/hosts`, `/etc/hostname`
/// and `/etc/resolv.conf` are bind-mounted over), mode 0644.
pub const SKELETON_FILES: &[&str] = &["etc/hosts", "etc/hostname", "etc/resolv.conf"];

/// Handle on the image store of one state root.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

/// Which layers and images callers still use (containers, mostly).
#[derive(Clone, Debug, Default)]
pub struct InUse {
    /// Image id → a container using it.
    pub images: BTreeMap<String, String>,
    /// Layer diff ids mounted by containers.
    pub layers: BTreeSet<String>,
}

impl Store {
    /// Opens (creating if needed) the store under `<state_root>/images`.
    pub fn open(state_root: &Path) -> Result<Store, StoreError> {
        let dir = state_root.join("images");
        for sub in ["blobs/sha256", "layers"] {
            let path = dir.join(sub);
            fs::create_dir_all(&path).map_err(io_err(&path))?;
        }
        Ok(Store { dir })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> Result<fsutil::LockGuard, StoreError> {
        let path = self.dir.join("lock");
        fsutil::lock(&path).map_err(io_err(&path))
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf, StoreError> {
        Ok(self.dir.join("blobs/sha256").join(digest_hex(digest)?))
    }

    /// Stores a small blob after checking it against `digest`.
    pub fn put_blob(&self, digest: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.blob_path(digest)?;
        let actual = sha256_digest(bytes);
        if actual != digest {
            return Err(StoreError::DigestMismatch {
                path: "blob".into(),
                expected: digest.into(),
                actual,
            });
        }
        fsutil::write_atomic(&path, bytes).map_err(io_err(&path))
    }

    /// Reads a blob.
    pub fn blob(&self, digest: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(digest)?;
        fs::read(&path).map_err(io_err(&path))
    }

    /// The layer every container's root filesystem gets right below its
    /// writable layer, as docker's init layer: the mount points that are
    /// mounted over at each start, [`SKELETON_DIRS`] and, with `etc_files`
    /// (for a container that gets all three bind-mounted), [`SKELETON_FILES`].
    /// With them there, a start does not make them in the writable layer
    /// (overlayfs would create each one, and copy `/etc` up, every time a
    /// container is made). Made once, atomically, and never changed.
    pub fn skeleton(&self, etc_files: bool) -> Result<PathBuf, StoreError> {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.dir.join(match etc_files {
            true => "skeleton-etc",
            false => "skeleton",
        });
        if path.is_dir() {
            return Ok(path);
        }
        let tmp = self.dir.join(format!(".skeleton-{}", std::process::id()));
        fsutil::remove_dir_all_if_exists(&tmp).map_err(io_err(&tmp))?;
        let made = (|| -> io::Result<()> {
            fs::create_dir_all(&tmp)?;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
            for dir in SKELETON_DIRS {
                let dir = tmp.join(dir);
                fs::create_dir(&dir)?;
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
            }
            let files: &[&str] = if etc_files { SKELETON_FILES } else { &[] };
            for file in files {
                let file = tmp.join(file);
                fs::File::create(&file)?;
                fs::set_permissions(&file, fs::Permissions::from_mode(0o644))?;
            }
            Ok(())
        })();
        if let Err(e) = made {
            let _ = fs::remove_dir_all(&tmp);
            return Err(io_err(&tmp)(e));
        }
        move_into_place(&tmp, path)
    }

    /// Directory of an unpacked layer (whether or not it exists).
    pub fn layer_path(&self, diff_id: &str) -> Result<PathBuf, StoreError> {
        Ok(self.dir.join("layers").join(digest_hex(diff_id)?))
    }

    /// Whether a layer is unpacked already.
    pub fn has_layer(&self, diff_id: &str) -> bool {
        self.layer_path(diff_id).is_ok_and(|p| p.is_dir())
    }

    /// Unpacks a layer blob and moves it into place if its diff id matches.
    pub fn add_layer(
        &self,
        blob: impl Read,
        compression: Compression,
        diff_id: &str,
    ) -> Result<PathBuf, StoreError> {
        let final_path = self.layer_path(diff_id)?;
        if final_path.is_dir() {
            return Ok(final_path);
        }
        let hex = digest_hex(diff_id)?;
        let tmp = self
            .dir
            .join("layers")
            .join(format!(".tmp-{hex}-{}", std::process::id()));
        fsutil::remove_dir_all_if_exists(&tmp).map_err(io_err(&tmp))?;
        fs::create_dir(&tmp).map_err(io_err(&tmp))?;
        let result = unpack::unpack_layer(blob, compression, &tmp, Mode::Overlay);
        let report = match result {
            Ok(report) => report,
            Err(source) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(StoreError::Unpack {
                    diff_id: diff_id.into(),
                    source,
                });
            }
        };
        if report.diff_id != diff_id {
            let _ = fs::remove_dir_all(&tmp);
            return Err(StoreError::DigestMismatch {
                path: format!("layer {diff_id}"),
                expected: diff_id.into(),
                actual: report.diff_id,
            });
        }
        move_into_place(&tmp, final_path)
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("images.json")
    }

    fn read_index(&self) -> Result<BTreeMap<String, ImageRecord>, StoreError> {
        let path = self.index_path();
        Ok(fsutil::read_json(&path)
            .map_err(io_err(&path))?
            .unwrap_or_default())
    }

    fn write_index(&self, index: &BTreeMap<String, ImageRecord>) -> Result<(), StoreError> {
        let path = self.index_path();
        fsutil::write_json(&path, index).map_err(io_err(&path))
    }

    /// Records (or replaces) a tagged image.
    pub fn tag(&self, record: ImageRecord) -> Result<(), StoreError> {
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        index.insert(record.reference.clone(), record);
        self.write_index(&index)
    }

    /// Every tagged image, by reference.
    pub fn list(&self) -> Result<Vec<ImageRecord>, StoreError> {
        Ok(self.read_index()?.into_values().collect())
    }

    /// Finds an image by normalized reference, by id, or by an id prefix of 12+ hex digits.
    pub fn get(&self, name: &str) -> Result<ImageRecord, StoreError> {
        let index = self.read_index()?;
        if let Some(record) = index.get(name) {
            return Ok(record.clone());
        }
        let wanted = name.strip_prefix("sha256:").unwrap_or(name);
        index
            .into_values()
            .find(|r| {
                let id = r.id.trim_start_matches("sha256:");
                id == wanted || (wanted.len() >= 12 && id.starts_with(wanted))
            })
            .ok_or_else(|| StoreError::NoSuchImage(name.to_string()))
    }

    /// The OCI image config of a stored image.
    pub fn config(
        &self,
        record: &ImageRecord,
    ) -> Result<oci_spec::image::ImageConfiguration, StoreError> {
        let bytes = self.blob(&record.id)?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Config {
            digest: record.id.clone(),
            source,
        })
    }

    /// Layer directories of an image, top layer first (overlayfs `lowerdir` order).
    pub fn lower_dirs(&self, record: &ImageRecord) -> Result<Vec<PathBuf>, StoreError> {
        record
            .layers
            .iter()
            .rev()
            .map(|d| self.layer_path(d))
            .collect()
    }

    /// Removes a tag; the image's content goes with the next prune.
    pub fn remove(&self, name: &str, in_use: &InUse) -> Result<ImageRecord, StoreError> {
        let _lock = self.lock()?;
        let record = self.get(name)?;
        if let Some(container) = in_use.images.get(&record.id) {
            return Err(StoreError::InUse {
                reference: record.reference,
                container: container.clone(),
            });
        }
        let mut index = self.read_index()?;
        index.remove(&record.reference);
        self.write_index(&index)?;
        Ok(record)
    }

    /// Deletes blobs and layers no tagged image and no user refers to; returns what went.
    pub fn prune(&self, in_use: &InUse) -> Result<Vec<String>, StoreError> {
        let _lock = self.lock()?;
        let index = self.read_index()?;
        let mut keep_layers = in_use.layers.clone();
        let mut keep_blobs = BTreeSet::new();
        for record in index.values() {
            keep_layers.extend(record.layers.iter().cloned());
            keep_blobs.insert(record.id.clone());
            keep_blobs.insert(record.manifest_digest.clone());
            keep_blobs.extend(record.repo_digest.iter().cloned());
        }
        let mut removed = self.prune_dir("layers", &keep_layers)?;
        removed.extend(self.prune_dir("blobs/sha256", &keep_blobs)?);
        Ok(removed)
    }

    fn prune_dir(&self, sub: &str, keep: &BTreeSet<String>) -> Result<Vec<String>, StoreError> {
        let dir = self.dir.join(sub);
        let mut removed = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let digest = format!("sha256:{name}");
            if keep.contains(&digest) {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                fsutil::remove_dir_all_if_exists(&path).map_err(io_err(&path))?;
            } else {
                fs::remove_file(&path).map_err(io_err(&path))?;
            }
            removed.push(digest);
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(reference: &str, id: &str, layers: &[&str]) -> ImageRecord {
        ImageRecord {
            reference: reference.into(),
            id: id.into(),
            manifest_digest: sha256_digest(b"manifest"),
            repo_digest: None,
            layers: layers.iter().map(|s| s.to_string()).collect(),
            size: 0,
            created: 0,
        }
    }

    #[test]
    fn a_blob_is_refused_when_its_content_does_not_match_the_digest() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let good = sha256_digest(b"abc");
        store.put_blob(&good, b"abc").unwrap();
        assert_eq!(store.blob(&good).unwrap(), b"abc");
        let err = store.put_blob(&good, b"abd").unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
        assert!(store.put_blob("sha256:../../x", b"").is_err());
    }

    #[test]
    fn images_are_found_by_reference_id_and_id_prefix() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let id = sha256_digest(b"config");
        store
            .tag(record("docker.io/library/busybox:latest", &id, &[]))
            .unwrap();
        assert_eq!(
            store.get("docker.io/library/busybox:latest").unwrap().id,
            id
        );
        assert_eq!(store.get(&id).unwrap().id, id);
        assert_eq!(store.get(&id[7..19]).unwrap().id, id);
        assert!(matches!(store.get("nope"), Err(StoreError::NoSuchImage(_))));
    }

    #[test]
    fn the_skeleton_holds_the_mount_points_and_is_made_once() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let bare = store.skeleton(false).unwrap();
        let with_etc = store.skeleton(true).unwrap();
        assert_ne!(bare, with_etc);
        for root in [&bare, &with_etc] {
            assert_eq!(mode(root), 0o755);
            for dir in SKELETON_DIRS {
                assert!(root.join(dir).is_dir(), "{dir}");
                assert_eq!(mode(&root.join(dir)), 0o755);
            }
        }
        for file in SKELETON_FILES {
            assert!(
                !bare.join(file).exists(),
                "{file} only where it is mounted over"
            );
            let meta = fs::metadata(with_etc.join(file)).unwrap();
            assert!(meta.is_file() && meta.len() == 0, "{file}");
            assert_eq!(meta.permissions().mode() & 0o7777, 0o644);
        }
        // Made once: a second call finds it (nothing is written again).
        let marker = bare.join("proc/.kept");
        fs::write(&marker, "").unwrap();
        assert_eq!(store.skeleton(false).unwrap(), bare);
        assert!(marker.exists());
        // Pruning layers leaves it alone.
        store.prune(&InUse::default()).unwrap();
        assert!(bare.is_dir() && with_etc.is_dir());
    }

    #[test]
    fn prune_keeps_what_tagged_images_and_containers_use() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let (a, b, c) = (
            sha256_digest(b"a"),
            sha256_digest(b"b"),
            sha256_digest(b"c"),
        );
        for layer in [&a, &b, &c] {
            fs::create_dir(store.layer_path(layer).unwrap()).unwrap();
        }
        let id = sha256_digest(b"config");
        store.put_blob(&id, b"config").unwrap();
        store.tag(record("r:1", &id, &[&a])).unwrap();
        let in_use = InUse {
            layers: [b.clone()].into(),
            ..InUse::default()
        };
        let removed = store.prune(&in_use).unwrap();
        assert_eq!(removed, vec![c.clone()]);
        assert!(store.has_layer(&a) && store.has_layer(&b) && !store.has_layer(&c));
    }

    #[test]
    fn an_image_used_by_a_container_is_not_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let id = sha256_digest(b"config");
        store.tag(record("r:1", &id, &[])).unwrap();
        let in_use = InUse {
            images: [(id.clone(), "web-1".to_string())].into(),
            ..InUse::default()
        };
        assert!(matches!(
            store.remove("r:1", &in_use),
            Err(StoreError::InUse { .. })
        ));
        store.remove("r:1", &InUse::default()).unwrap();
        assert!(store.list().unwrap().is_empty());
    }
}
