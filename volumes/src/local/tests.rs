//! Unit tests of the local driver, in a temporary state root with the fake
//! mounter.

use std::collections::BTreeMap;
use std::fs;

use tempfile::TempDir;

use super::*;
use crate::fake::{FakeMounter, MounterCall};

fn driver() -> (TempDir, LocalDriver<FakeMounter>) {
    let dir = tempfile::tempdir().unwrap();
    let paths = VolumePaths::new(&dir.path().join("lib"), &dir.path().join("run"));
    (dir, LocalDriver::new(paths, FakeMounter::new()))
}

fn map(pairs: &[(&str, &str)]) -> StringMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn none() -> StringMap {
    BTreeMap::new()
}

#[test]
fn creating_a_volume_makes_its_data_directory_and_a_labelled_record() {
    let (_dir, driver) = driver();
    let labels = map(&[("io.rcompose.project", "shop")]);
    let record = driver.create("shop_data", &labels, &none()).unwrap();
    let data = driver.paths().data("shop_data");
    assert!(data.is_dir());
    assert_eq!(record.mountpoint, data);
    assert_eq!(record.driver, "local");
    assert_eq!(record.labels, labels);
    assert!(record.created.ends_with('Z'), "{}", record.created);
    assert_eq!(driver.get("shop_data").unwrap(), Some(record));
}

#[test]
fn creating_an_existing_volume_returns_it_unchanged() {
    let (_dir, driver) = driver();
    let first = driver.create("shop_data", &none(), &none()).unwrap();
    fs::write(first.mountpoint.join("keep"), "x").unwrap();
    let labels = map(&[("other", "label")]);
    let again = driver.create("shop_data", &labels, &none()).unwrap();
    assert_eq!(again, first);
    assert!(first.mountpoint.join("keep").exists());
}

#[test]
fn volumes_are_listed_by_name() {
    let (_dir, driver) = driver();
    assert!(driver.list().unwrap().is_empty());
    for name in ["web_b", "web_a"] {
        driver.create(name, &none(), &none()).unwrap();
    }
    let names: Vec<_> = driver.list().unwrap().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["web_a", "web_b"]);
}

#[test]
fn removing_deletes_the_volume_and_removing_again_succeeds() {
    let (_dir, driver) = driver();
    let record = driver.create("shop_data", &none(), &none()).unwrap();
    fs::write(record.mountpoint.join("file"), "x").unwrap();
    driver.remove("shop_data").unwrap();
    assert!(!driver.paths().volume_dir("shop_data").exists());
    assert_eq!(driver.get("shop_data").unwrap(), None);
    driver.remove("shop_data").unwrap();
    let leftovers: Vec<_> = fs::read_dir(&driver.paths().state).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "only .lock stays: {leftovers:?}");
}

#[test]
fn a_half_deleted_volume_from_a_crash_is_finished_by_remove() {
    let (_dir, driver) = driver();
    let trash = driver.paths().removing("shop_data");
    fs::create_dir_all(trash.join("_data")).unwrap();
    assert!(driver.list().unwrap().is_empty());
    driver.remove("shop_data").unwrap();
    assert!(!trash.exists());
}

#[test]
fn a_name_that_could_leave_the_state_directory_is_refused() {
    let (_dir, driver) = driver();
    for name in ["../etc", "a/b", ".lock", "x"] {
        let err = driver.create(name, &none(), &none()).unwrap_err();
        assert!(matches!(err, DriverError::InvalidName(_)), "{name}: {err}");
        assert!(driver.remove(name).is_err());
    }
}

#[test]
fn a_tmpfs_volume_is_mounted_on_first_use_once_and_unmounted_on_remove() {
    let (_dir, driver) = driver();
    let opts = map(&[
        ("type", "tmpfs"),
        ("device", "tmpfs"),
        ("o", "size=64m,mode=0700"),
    ]);
    driver.create("cache", &none(), &opts).unwrap();
    assert!(
        driver.mounter().calls().is_empty(),
        "nothing mounted at create"
    );
    let data = driver.mount("cache").unwrap();
    driver.mount("cache").unwrap();
    let mount = HostMount {
        source: "tmpfs".into(),
        target: data.clone(),
        fstype: "tmpfs".into(),
        options: vec!["size=64m".into(), "mode=0700".into()],
    };
    driver.remove("cache").unwrap();
    let calls = driver.mounter().calls();
    assert_eq!(
        calls,
        [MounterCall::Mount(mount), MounterCall::Unmount(data)]
    );
}

#[test]
fn a_bind_volume_mounts_its_device_directory() {
    let (dir, driver) = driver();
    let device = dir.path().join("device");
    fs::create_dir(&device).unwrap();
    let device_text = device.to_str().unwrap();
    let opts = map(&[("type", "none"), ("o", "bind"), ("device", device_text)]);
    driver.create("src", &none(), &opts).unwrap();
    let data = driver.mount("src").unwrap();
    let MounterCall::Mount(mount) = &driver.mounter().calls()[0] else {
        panic!("expected a mount");
    };
    assert_eq!((mount.source.as_str(), &mount.target), (device_text, &data));
    assert!(mount.is_bind());
}

#[test]
fn a_bind_volume_whose_device_is_missing_fails_at_mount_naming_it() {
    let (_dir, driver) = driver();
    let opts = map(&[
        ("type", "none"),
        ("o", "bind"),
        ("device", "/nonexistent/dev"),
    ]);
    driver.create("src", &none(), &opts).unwrap();
    let err = driver.mount("src").unwrap_err();
    assert_eq!(
        err.to_string(),
        "volume src: bind device /nonexistent/dev does not exist"
    );
    assert!(driver.mounter().calls().is_empty());
}

#[test]
fn a_volume_whose_unmount_fails_keeps_its_content() {
    let (_dir, driver) = driver();
    let opts = map(&[("type", "tmpfs"), ("o", "size=1m")]);
    driver.create("cache", &none(), &opts).unwrap();
    let data = driver.mount("cache").unwrap();
    fs::write(data.join("file"), "x").unwrap();
    driver.mounter().fail_unmounts();
    let err = driver.remove("cache").unwrap_err();
    assert!(matches!(err, DriverError::Unmount { .. }), "{err}");
    assert!(data.join("file").exists());
}

#[test]
fn mounting_a_missing_volume_is_not_found() {
    let (_dir, driver) = driver();
    let err = driver.mount("ghost").unwrap_err();
    assert_eq!(err.to_string(), "no such volume ghost");
}

#[test]
fn no_driver_opts_is_a_plain_directory() {
    assert_eq!(
        LocalOptions::parse("v", &none()).unwrap(),
        LocalOptions::Plain
    );
    assert_eq!(LocalOptions::Plain.host_mount(Path::new("/d")), None);
}

#[test]
fn tmpfs_device_defaults_to_tmpfs_and_flag_words_are_kept() {
    let opts = map(&[("type", "tmpfs"), ("o", " size=1m , ro ")]);
    let parsed = LocalOptions::parse("v", &opts).unwrap();
    let expected = LocalOptions::Tmpfs {
        device: "tmpfs".into(),
        options: vec!["size=1m".into(), "ro".into()],
    };
    assert_eq!(parsed, expected);
}

#[test]
fn unsupported_driver_opts_say_what_is_supported() {
    let cases = [
        (
            map(&[("type", "nfs"), ("o", "addr=10.0.0.1"), ("device", ":/x")]),
            "type \"nfs\"",
        ),
        (map(&[("size", "10g")]), "option \"size\" is not supported"),
        (
            map(&[("type", "none"), ("o", "bind")]),
            "o bind needs a device",
        ),
        (
            map(&[("type", "none"), ("o", "bind"), ("device", "rel")]),
            "must be an absolute path",
        ),
        (
            map(&[("type", "none"), ("device", "/x")]),
            "type \"none\" with o \"\"",
        ),
        (
            map(&[("type", "tmpfs"), ("o", "bind"), ("device", "/x")]),
            "type \"tmpfs\"",
        ),
    ];
    for (opts, needle) in cases {
        let err = LocalOptions::parse("shop_data", &opts)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("volume shop_data: unsupported driver_opts: "),
            "{err}"
        );
        assert!(err.contains(needle), "{err} lacks {needle}");
        assert!(
            err.contains("supported: type tmpfs") || needle.contains("absolute"),
            "{err}"
        );
    }
}

#[test]
fn create_refuses_unsupported_driver_opts_before_writing_anything() {
    let (_dir, driver) = driver();
    let err = driver
        .create("v1", &none(), &map(&[("type", "ext4")]))
        .unwrap_err();
    assert!(matches!(err, DriverError::UnsupportedOptions { .. }));
    assert!(!driver.paths().volume_dir("v1").exists());
}
