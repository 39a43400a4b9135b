//! `rcompose image import`: a root filesystem tarball (plain, gzip or zstd)
//! becomes a one-layer image whose config is built from [`ImportConfig`].
//!
//! Invariant: the decompressed tar is spooled and hashed (its diff id)
//! before anything is stored; the spool is removed on every exit path.

use std::fs::File;
use std::io::{self, BufWriter, Read};
use std::path::Path;
use std::time::SystemTime;

use super::stream::{Hashed, HashingWriter, TempPath, decoder, sniff_stream};
use super::{
    Candidate, ImportConfig, LayerFile, LoadError, commit, host_arch, manifest_for, parse_name,
    temp_err,
};
use crate::store::{self, ImageRecord, Store};
use crate::unpack::Compression;

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
    use std::time::UNIX_EPOCH;

    use super::*;

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
