//! OCI image layout directories: `oci-layout`, `index.json` and
//! `blobs/sha256/…`, nested indexes followed and narrowed to linux on the
//! host architecture.
//!
//! Invariant: every blob is checked against its descriptor's size and sha256
//! before it is used; small blobs are size-checked before they are read.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, Platform};

use super::stream::{Hashed, hash_file, sniff_file};
use super::{
    Candidate, LayerFile, LoadError, MANIFEST_TYPES, commit, host_arch, parse_json, read_err,
    read_json, reference_for,
};
use crate::store::{self, ImageRecord, Store};
use crate::unpack::Compression;

/// Annotation holding a full image name (containerd, `docker save` ≥ 25).
const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// Media types of an index, OCI and docker.
const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
/// How deep indexes may nest (a guard against a hostile chain, not a real limit).
const MAX_NESTING: usize = 8;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
