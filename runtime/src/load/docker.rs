//! `docker save` archives, plain or compressed: the archive is spooled
//! under `<store>/tmp/` (entries come in any order), then `manifest.json`
//! (`Config`, `RepoTags`, `Layers`) is read from the spool; an archive that
//! holds only an OCI layout is loaded as one.
//!
//! Invariants: the spool is removed on every exit path, and no archive path
//! or link resolves outside the spool directory.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::oci::load_oci_layout;
use super::stream::{Hashed, HashingWriter, TempPath, decoder, sniff_file, sniff_stream};
use super::{
    Candidate, LayerFile, LoadError, commit, manifest_for, parse_name, read_err, read_json,
    temp_err,
};
use crate::store::{self, ImageRecord, Store};
use crate::unpack;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths_never_leave_the_spool() {
        let path = |raw: &str| archive_path(Path::new(raw));
        assert_eq!(path("../../etc/passwd"), Some(PathBuf::from("etc/passwd")));
        assert_eq!(path("/abc/layer.tar"), Some(PathBuf::from("abc/layer.tar")));
        assert_eq!(path("abc/../../x"), Some(PathBuf::from("x")));
        assert_eq!(path("./"), None);
    }
}
