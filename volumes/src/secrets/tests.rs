//! Unit tests of configs and secrets: resolution, digests, and delivery into
//! a temporary directory through the fake mounter.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use tempfile::TempDir;

use super::*;
use crate::fake::{FakeMounter, MounterCall};

fn request(kind: FileKind, name: &str, source: FileSource) -> FileRequest {
    FileRequest {
        kind,
        name: name.into(),
        source,
        target: None,
        uid: None,
        gid: None,
        mode: None,
    }
}

fn content(kind: FileKind, name: &str, text: &str) -> FileRequest {
    request(kind, name, FileSource::Content(text.into()))
}

fn no_env() -> BTreeMap<String, String> {
    BTreeMap::new()
}

fn files(tmpfs: bool) -> (TempDir, SecretFiles<FakeMounter>) {
    let dir = tempfile::tempdir().unwrap();
    let paths = VolumePaths::new(&dir.path().join("lib"), &dir.path().join("run"));
    let files = SecretFiles::new(paths, FakeMounter::new());
    let files = if tmpfs { files } else { files.without_tmpfs() };
    (dir, files)
}

#[test]
fn default_targets_are_slash_name_for_configs_and_run_secrets_for_secrets() {
    let config = content(FileKind::Config, "nginx_conf", "x");
    let secret = content(FileKind::Secret, "db_password", "x");
    assert_eq!(target_of(&config).unwrap(), "/nginx_conf");
    assert_eq!(target_of(&secret).unwrap(), "/run/secrets/db_password");
}

#[test]
fn a_relative_secret_target_goes_under_run_secrets() {
    let mut secret = content(FileKind::Secret, "db_password", "x");
    secret.target = Some("db/pass".into());
    assert_eq!(target_of(&secret).unwrap(), "/run/secrets/db/pass");
    secret.target = Some("/etc/pass".into());
    assert_eq!(target_of(&secret).unwrap(), "/etc/pass");
    let mut config = content(FileKind::Config, "c", "x");
    config.target = Some("etc/app.conf".into());
    assert_eq!(target_of(&config).unwrap(), "/etc/app.conf");
}

#[test]
fn a_target_that_climbs_or_names_no_file_is_refused() {
    let mut secret = content(FileKind::Secret, "s", "x");
    secret.target = Some("../../etc/shadow".into());
    let err = target_of(&secret).unwrap_err().to_string();
    assert_eq!(
        err,
        "secret s: invalid target \"/run/secrets/../../etc/shadow\": it must not contain .."
    );
    secret.target = Some("/".into());
    assert!(target_of(&secret).is_err());
}

#[test]
fn content_comes_from_inline_text_the_environment_or_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pw.txt");
    fs::write(&path, "from file").unwrap();
    let env = BTreeMap::from([("DB_PW".to_string(), "from env".to_string())]);
    let sources = [
        (FileSource::Content("inline".into()), "inline"),
        (FileSource::Environment("DB_PW".into()), "from env"),
        (FileSource::File(path), "from file"),
    ];
    for (source, expected) in sources {
        let resolved = resolve(&request(FileKind::Secret, "s", source), &env).unwrap();
        assert_eq!(resolved.content, expected.as_bytes());
        assert_eq!((resolved.uid, resolved.gid, resolved.mode), (0, 0, 0o444));
    }
}

#[test]
fn a_missing_variable_or_file_names_the_secret_and_the_source() {
    let unset = request(
        FileKind::Secret,
        "api_key",
        FileSource::Environment("API_KEY".into()),
    );
    let err = resolve(&unset, &no_env()).unwrap_err().to_string();
    assert_eq!(
        err,
        "secret api_key: environment variable API_KEY is not set"
    );
    let missing = request(
        FileKind::Config,
        "app",
        FileSource::File("/nonexistent/app.conf".into()),
    );
    let err = resolve(&missing, &no_env()).unwrap_err().to_string();
    assert_eq!(err, "config app: failed to read /nonexistent/app.conf");
}

#[test]
fn the_digest_changes_with_content_owner_mode_and_target_only() {
    let base = content(FileKind::Secret, "s", "one");
    let digest = |r: &FileRequest| resolve(r, &no_env()).unwrap().digest;
    let first = digest(&base);
    assert!(first.starts_with("sha256:") && first.len() == 71, "{first}");
    assert_eq!(digest(&base.clone()), first);
    let changes: [fn(&mut FileRequest); 5] = [
        |r| r.source = FileSource::Content("two".into()),
        |r| r.uid = Some(1000),
        |r| r.gid = Some(1000),
        |r| r.mode = Some(0o400),
        |r| r.target = Some("other".into()),
    ];
    for change in changes {
        let mut changed = base.clone();
        change(&mut changed);
        assert_ne!(digest(&changed), first, "{changed:?}");
    }
}

#[test]
fn resolved_content_is_not_shown_by_debug() {
    let resolved = resolve(&content(FileKind::Secret, "s", "hunter2"), &no_env()).unwrap();
    let shown = format!("{resolved:?}");
    assert!(
        !shown.contains("hunter2") && shown.contains("<7 bytes>"),
        "{shown}"
    );
}

#[test]
fn delivered_files_have_their_content_mode_and_owner_and_read_only_mounts() {
    let (_dir, files) = files(false);
    let mut secret = content(FileKind::Secret, "db_password", "s3cret");
    (secret.uid, secret.gid, secret.mode) = (Some(1000), Some(1001), Some(0o400));
    let config = content(FileKind::Config, "app.conf", "port=80");
    let resolved = [secret, config].map(|r| resolve(&r, &no_env()).unwrap());
    let delivered = files.deliver("c0ffee", &resolved).unwrap();
    let dir = files.dir("c0ffee");
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let [secret_path, config_path] = &delivered.paths[..] else {
        panic!("two files expected");
    };
    assert_eq!(secret_path, &dir.join("secrets/000-db_password"));
    assert_eq!(fs::read_to_string(secret_path).unwrap(), "s3cret");
    assert_eq!(fs::metadata(secret_path).unwrap().mode() & 0o7777, 0o400);
    assert_eq!(fs::metadata(config_path).unwrap().mode() & 0o7777, 0o444);
    assert_eq!(files.mounter().owner(secret_path), Some((1000, 1001)));
    let mount = &delivered.mounts[0];
    assert_eq!(mount.target, "/run/secrets/db_password");
    assert_eq!(mount.source, secret_path.to_str().unwrap());
    assert_eq!(
        (mount.kind.as_str(), &mount.options[..]),
        ("bind", &["rbind".to_string(), "ro".to_string()][..])
    );
    assert_eq!(delivered.digests["/app.conf"], resolved[1].digest);
}

#[test]
fn the_owner_is_left_alone_when_it_already_is_the_asked_one() {
    let (_dir, files) = files(false);
    let me = fs::metadata(tempfile::tempdir().unwrap().path()).unwrap();
    let mut config = content(FileKind::Config, "c", "x");
    (config.uid, config.gid) = (Some(me.uid()), Some(me.gid()));
    let resolved = resolve(&config, &no_env()).unwrap();
    files.deliver("c1", &[resolved]).unwrap();
    assert!(files.mounter().calls().is_empty());
}

#[test]
fn delivering_mounts_a_private_tmpfs_once_and_replaces_old_files() {
    let (_dir, files) = files(true);
    let first = resolve(&content(FileKind::Config, "a", "1"), &no_env()).unwrap();
    let second = resolve(&content(FileKind::Config, "b", "2"), &no_env()).unwrap();
    files.deliver("c1", &[first]).unwrap();
    let delivered = files.deliver("c1", &[second]).unwrap();
    let dir = files.dir("c1");
    let names: Vec<_> = fs::read_dir(dir.join("configs"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["000-b"]);
    assert_eq!(delivered.paths, [dir.join("configs/000-b")]);
    let mounts: Vec<_> = files
        .mounter()
        .calls()
        .into_iter()
        .filter(|c| matches!(c, MounterCall::Mount(_)))
        .collect();
    let MounterCall::Mount(tmpfs) = &mounts[..][0] else {
        unreachable!()
    };
    assert_eq!(mounts.len(), 1);
    assert_eq!((tmpfs.fstype.as_str(), &tmpfs.target), ("tmpfs", &dir));
    assert!(tmpfs.options.contains(&"mode=0700".to_string()));
}

#[test]
fn removal_unmounts_deletes_and_can_be_repeated() {
    let (_dir, files) = files(true);
    let file = resolve(&content(FileKind::Secret, "s", "x"), &no_env()).unwrap();
    files.deliver("c1", &[file]).unwrap();
    files.remove("c1").unwrap();
    files.remove("c1").unwrap();
    assert!(!files.dir("c1").exists());
    assert!(files.mounter().mounted().is_empty());
}

#[test]
fn a_failed_unmount_keeps_the_files_and_reports_the_path() {
    let (_dir, files) = files(true);
    let file = resolve(&content(FileKind::Secret, "s", "x"), &no_env()).unwrap();
    files.deliver("c1", &[file]).unwrap();
    files.mounter().fail_unmounts();
    let err = files.remove("c1").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("failed to unmount the configs and secrets tmpfs on ")
    );
    assert!(files.dir("c1").join("secrets/000-s").exists());
}

#[test]
fn a_container_id_that_is_not_a_plain_name_is_refused() {
    let (_dir, files) = files(false);
    for id in ["", "..", "a/b", ".hidden"] {
        let err = files.deliver(id, &[]).unwrap_err();
        assert!(matches!(err, SecretError::InvalidContainer(_)), "{id}");
        assert!(files.remove(id).is_err());
    }
}

#[test]
fn key_names_become_safe_file_names() {
    assert_eq!(safe_name("db.password-v2_x"), "db.password-v2_x");
    assert_eq!(safe_name("a/b c"), "a_b_c");
}
