//! Offline image loading against a real store: OCI layouts, `docker save`
//! archives (both formats) and rootfs imports, built here from tiny layers.

use std::fs;
use std::io::Write;
use std::path::Path;

use rcompose_runtime::load::{
    ImportConfig, LoadError, import_rootfs, load_docker_archive, load_oci_layout,
};
use rcompose_runtime::store::{Store, sha256_digest};
use serde_json::{Value, json};

const GZIP_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("state")).unwrap();
    (tmp, store)
}

/// A tar header owned by root, as image layers have.
fn header(kind: tar::EntryType, size: usize) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_700_000_000);
    header
}

/// Appends a regular file to a tar being built.
fn append(builder: &mut tar::Builder<Vec<u8>>, path: &str, bytes: &[u8]) {
    let mut header = header(tar::EntryType::Regular, bytes.len());
    builder.append_data(&mut header, path, bytes).unwrap();
}

/// A plain layer tar holding `files`.
fn layer(files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        append(&mut builder, path, content.as_bytes());
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn config(diff_ids: &[String]) -> Vec<u8> {
    let config = json!({
        "architecture": host_arch(),
        "os": "linux",
        "config": { "Cmd": ["/bin/greet"] },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    serde_json::to_vec(&config).unwrap()
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Writes a blob into an OCI layout; returns its descriptor.
fn put_blob(dir: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let digest = sha256_digest(bytes);
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    fs::write(blobs.join(&digest[7..]), bytes).unwrap();
    json!({ "mediaType": media_type, "digest": digest, "size": bytes.len() })
}

/// Writes one image (gzip layers) into a layout; returns its manifest descriptor.
fn put_image(dir: &Path, layers: &[Vec<u8>]) -> Value {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256_digest(l)).collect();
    let config = put_blob(
        dir,
        "application/vnd.oci.image.config.v1+json",
        &config(&diff_ids),
    );
    let layers: Vec<Value> = layers
        .iter()
        .map(|l| put_blob(dir, GZIP_LAYER, &gzip(l)))
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config,
        "layers": layers,
    });
    put_blob(dir, MANIFEST, &serde_json::to_vec(&manifest).unwrap())
}

fn with_annotation(mut descriptor: Value, key: &str, value: &str) -> Value {
    descriptor["annotations"] = json!({ key: value });
    descriptor
}

fn write_layout(dir: &Path, manifests: Vec<Value>) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = json!({ "schemaVersion": 2, "mediaType": INDEX, "manifests": manifests });
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

fn hello_layer() -> Vec<u8> {
    layer(&[("etc/hello", "hi\n"), ("bin/greet", "#!/bin/sh\necho hi\n")])
}

fn layer_file(store: &Store, diff_id: &str, path: &str) -> String {
    fs::read_to_string(store.layer_path(diff_id).unwrap().join(path)).unwrap()
}

fn spool_is_empty(store: &Store) -> bool {
    let tmp = store.dir().join("tmp");
    !tmp.exists() || fs::read_dir(tmp).unwrap().next().is_none()
}

#[test]
fn an_oci_layout_is_loaded_under_the_name_in_its_annotation() {
    let (tmp, store) = store();
    let dir = tmp.path().join("layout");
    let tar = hello_layer();
    let manifest = put_image(&dir, std::slice::from_ref(&tar));
    let manifest = with_annotation(
        manifest,
        "io.containerd.image.name",
        "example.com/hello:1.0",
    );
    write_layout(&dir, vec![manifest.clone()]);

    let records = load_oci_layout(&store, &dir, None).unwrap();

    assert_eq!(records.len(), 1);
    let record = store.get("example.com/hello:1.0").unwrap();
    assert_eq!(record, records[0]);
    assert_eq!(record.manifest_digest, manifest["digest"]);
    assert_eq!(record.layers, vec![sha256_digest(&tar)]);
    assert_eq!(layer_file(&store, &record.layers[0], "etc/hello"), "hi\n");
    let cmd = store.config(&record).unwrap().config().clone().unwrap();
    assert_eq!(cmd.cmd().as_deref(), Some(&["/bin/greet".to_string()][..]));
}

#[test]
fn a_layout_named_only_by_a_tag_is_refused_unless_a_name_is_given() {
    let (tmp, store) = store();
    let dir = tmp.path().join("layout");
    let manifest = put_image(&dir, &[hello_layer()]);
    let manifest = with_annotation(manifest, "org.opencontainers.image.ref.name", "1.0");
    write_layout(&dir, vec![manifest]);

    let err = load_oci_layout(&store, &dir, None).unwrap_err();
    assert!(matches!(err, LoadError::Unnamed(_)), "{err}");
    assert!(store.list().unwrap().is_empty());

    load_oci_layout(&store, &dir, Some("hello:1.0")).unwrap();
    assert!(store.get("docker.io/library/hello:1.0").is_ok());
}

#[test]
fn a_nested_index_yields_only_the_manifest_for_the_host_platform() {
    let (tmp, store) = store();
    let dir = tmp.path().join("layout");
    let mut host = put_image(&dir, &[hello_layer()]);
    host["platform"] = json!({ "os": "linux", "architecture": host_arch() });
    // Its blob is absent: reading it would fail the load.
    let other = json!({
        "mediaType": MANIFEST,
        "digest": sha256_digest(b"another platform"),
        "size": 16,
        "platform": { "os": "linux", "architecture": "mips64le" },
    });
    let nested = json!({ "schemaVersion": 2, "mediaType": INDEX, "manifests": [other, host] });
    let nested = put_blob(&dir, INDEX, &serde_json::to_vec(&nested).unwrap());
    let nested = with_annotation(
        nested,
        "org.opencontainers.image.ref.name",
        "example.com/multi:2",
    );
    write_layout(&dir, vec![nested]);

    let records = load_oci_layout(&store, &dir, None).unwrap();

    assert_eq!(records.len(), 1);
    let record = store.get("example.com/multi:2").unwrap();
    assert_eq!(record.manifest_digest, host["digest"]);
}

#[test]
fn a_layout_with_a_tampered_blob_is_refused_and_nothing_is_tagged() {
    let (tmp, store) = store();
    let dir = tmp.path().join("layout");
    let tar = hello_layer();
    let manifest = put_image(&dir, std::slice::from_ref(&tar));
    let manifest = with_annotation(manifest, "io.containerd.image.name", "hello:1");
    write_layout(&dir, vec![manifest]);
    let blob = dir
        .join("blobs/sha256")
        .join(&sha256_digest(&gzip(&tar))[7..]);
    let mut bytes = fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&blob, bytes).unwrap();

    let err = load_oci_layout(&store, &dir, None).unwrap_err();

    assert!(matches!(err, LoadError::BlobDigest { .. }), "{err}");
    assert!(
        err.to_string().contains("does not match its digest"),
        "{err}"
    );
    assert!(store.list().unwrap().is_empty());
    assert!(!store.has_layer(&sha256_digest(&tar)));
}

#[test]
fn a_docker_save_archive_is_loaded_under_each_repo_tag() {
    let (_tmp, store) = store();
    let (a, b) = (hello_layer(), layer(&[("etc/motd", "welcome\n")]));
    let diff_ids = [sha256_digest(&a), sha256_digest(&b), sha256_digest(&a)];
    let manifest = json!([{
        "Config": "cfg.json",
        "RepoTags": ["hello:1", "example.com/hello:latest"],
        "Layers": ["aaa/layer.tar", "bbb/layer.tar", "ccc/layer.tar"],
    }]);
    // Manifest first, config last, and a duplicate layer as a symlink, as old docker writes it.
    let mut builder = tar::Builder::new(Vec::new());
    append(
        &mut builder,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    let mut link = header(tar::EntryType::Symlink, 0);
    builder
        .append_link(&mut link, "ccc/layer.tar", "../aaa/layer.tar")
        .unwrap();
    append(&mut builder, "bbb/layer.tar", &gzip(&b));
    append(&mut builder, "aaa/layer.tar", &a);
    append(&mut builder, "cfg.json", &config(&diff_ids));
    let archive = builder.into_inner().unwrap();

    let records = load_docker_archive(&store, archive.as_slice(), None).unwrap();

    assert_eq!(records.len(), 2);
    for name in ["docker.io/library/hello:1", "example.com/hello:latest"] {
        let record = store.get(name).unwrap();
        assert_eq!(record.id, sha256_digest(&config(&diff_ids)));
        assert_eq!(record.layers, diff_ids);
        assert!(store.blob(&record.manifest_digest).is_ok());
    }
    assert_eq!(
        layer_file(&store, &diff_ids[0], "bin/greet"),
        "#!/bin/sh\necho hi\n"
    );
    assert_eq!(layer_file(&store, &diff_ids[1], "etc/motd"), "welcome\n");
    assert!(spool_is_empty(&store));
}

#[test]
fn a_gzipped_docker_archive_that_holds_only_an_oci_layout_is_loaded_as_a_layout() {
    let (tmp, store) = store();
    let dir = tmp.path().join("layout");
    let manifest = put_image(&dir, &[hello_layer()]);
    let manifest = with_annotation(manifest, "io.containerd.image.name", "hello:oci");
    write_layout(&dir, vec![manifest]);
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_dir_all(".", &dir).unwrap();
    let archive = gzip(&builder.into_inner().unwrap());

    load_docker_archive(&store, archive.as_slice(), None).unwrap();

    let record = store.get("docker.io/library/hello:oci").unwrap();
    assert_eq!(layer_file(&store, &record.layers[0], "etc/hello"), "hi\n");
    assert!(spool_is_empty(&store));
}

#[test]
fn a_failed_docker_load_tags_nothing_and_leaves_no_spool_behind() {
    let (_tmp, store) = store();
    let a = hello_layer();
    let manifest = json!([{
        "Config": "cfg.json",
        "RepoTags": ["hello:1"],
        "Layers": ["aaa/layer.tar", "missing/layer.tar"],
    }]);
    let mut builder = tar::Builder::new(Vec::new());
    append(&mut builder, "aaa/layer.tar", &a);
    let diff_ids = [sha256_digest(&a), sha256_digest(b"x")];
    append(&mut builder, "cfg.json", &config(&diff_ids));
    append(
        &mut builder,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    let archive = builder.into_inner().unwrap();

    let err = load_docker_archive(&store, archive.as_slice(), None).unwrap_err();

    assert!(matches!(err, LoadError::MissingEntry(_)), "{err}");
    assert!(store.list().unwrap().is_empty());
    assert!(spool_is_empty(&store));
}

#[test]
fn an_imported_gzip_rootfs_becomes_a_one_layer_image_with_its_cmd() {
    let (_tmp, store) = store();
    let tar = hello_layer();
    let config = ImportConfig {
        cmd: Some(vec!["/bin/greet".into(), "now".into()]),
        env: vec!["GREETING=hi".into()],
        working_dir: Some("/etc".into()),
        ..ImportConfig::default()
    };

    let record = import_rootfs(&store, gzip(&tar).as_slice(), "imported:1", config).unwrap();

    assert_eq!(store.get("docker.io/library/imported:1").unwrap(), record);
    assert_eq!(record.layers, vec![sha256_digest(&tar)]);
    assert_eq!(layer_file(&store, &record.layers[0], "etc/hello"), "hi\n");
    let image = store.config(&record).unwrap();
    assert_eq!(image.architecture().to_string(), host_arch());
    let process = image.config().clone().unwrap();
    let cmd = vec!["/bin/greet".to_string(), "now".to_string()];
    assert_eq!(process.cmd(), &Some(cmd));
    assert_eq!(process.env(), &Some(vec!["GREETING=hi".to_string()]));
    assert_eq!(process.working_dir().as_deref(), Some("/etc"));
    assert_eq!(process.entrypoint(), &None);
    assert!(spool_is_empty(&store));
}

#[test]
fn an_imported_zstd_rootfs_is_recognized_by_its_magic_bytes() {
    let (_tmp, store) = store();
    let tar = hello_layer();
    let compressed = zstd::encode_all(tar.as_slice(), 3).unwrap();

    let record = import_rootfs(
        &store,
        compressed.as_slice(),
        "zst",
        ImportConfig::default(),
    )
    .unwrap();

    assert_eq!(record.layers, vec![sha256_digest(&tar)]);
    assert_eq!(
        layer_file(&store, &record.layers[0], "bin/greet"),
        "#!/bin/sh\necho hi\n"
    );
    let image = store.config(&record).unwrap();
    assert_eq!(image.config().as_ref().and_then(|c| c.cmd().clone()), None);
}
