//! Unit tests of the volume operations, over the local driver in a
//! temporary state root and over the fake driver.

use std::collections::BTreeSet;

use tempfile::TempDir;

use super::*;
use crate::fake::{DriverCall, FakeDriver, FakeMounter};
use crate::local::LocalDriver;
use crate::store::{LABEL_PROJECT, VolumePaths};

fn volumes() -> (TempDir, Volumes<LocalDriver<FakeMounter>>) {
    let dir = tempfile::tempdir().unwrap();
    let paths = VolumePaths::new(&dir.path().join("lib"), &dir.path().join("run"));
    let driver = LocalDriver::new(paths, FakeMounter::new());
    (dir, Volumes::new(driver))
}

fn request(name: &str, project: &str) -> VolumeRequest {
    VolumeRequest {
        name: name.into(),
        labels: [(LABEL_PROJECT.to_string(), project.to_string())].into(),
        ..VolumeRequest::default()
    }
}

fn names(records: &[VolumeRecord]) -> Vec<&str> {
    records.iter().map(|r| r.name.as_str()).collect()
}

#[test]
fn ensure_creates_a_volume_once_and_inspect_finds_it() {
    let (_dir, volumes) = volumes();
    let created = volumes.ensure(&request("shop_data", "shop")).unwrap();
    let again = volumes.ensure(&request("shop_data", "shop")).unwrap();
    assert_eq!(created, again);
    assert_eq!(volumes.inspect("shop_data").unwrap(), created);
    assert_eq!(created.project(), Some("shop"));
}

#[test]
fn a_missing_external_volume_is_an_error_and_is_not_created() {
    let (_dir, volumes) = volumes();
    let external = VolumeRequest {
        name: "shared_certs".into(),
        external: true,
        ..VolumeRequest::default()
    };
    let err = volumes.ensure(&external).unwrap_err();
    assert_eq!(
        err.to_string(),
        "volume shared_certs declared as external could not be found"
    );
    assert!(volumes.list().unwrap().is_empty());
}

#[test]
fn an_existing_external_volume_is_returned() {
    let (_dir, volumes) = volumes();
    volumes.ensure(&request("shared_certs", "other")).unwrap();
    let found = volumes.ensure_external("shared_certs").unwrap();
    assert_eq!(found.name, "shared_certs");
}

#[test]
fn a_volume_in_use_cannot_be_removed_and_the_error_names_the_container() {
    let (_dir, volumes) = volumes();
    volumes.ensure(&request("shop_data", "shop")).unwrap();
    let err = volumes
        .remove("shop_data", &["shop-db-1".into()])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "volume shop_data is in use by container shop-db-1"
    );
    let users = ["shop-db-1".to_string(), "shop-backup-1".to_string()];
    let err = volumes.remove("shop_data", &users).unwrap_err();
    assert_eq!(
        err.to_string(),
        "volume shop_data is in use by containers shop-db-1, shop-backup-1"
    );
    assert!(volumes.inspect("shop_data").is_ok());
}

#[test]
fn removing_an_unused_volume_deletes_it_and_a_missing_one_is_not_found() {
    let (_dir, volumes) = volumes();
    volumes.ensure(&request("shop_data", "shop")).unwrap();
    volumes.remove("shop_data", &[]).unwrap();
    let err = volumes.remove("shop_data", &[]).unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(err.to_string(), "no such volume shop_data");
}

#[test]
fn anonymous_volumes_get_64_hex_digit_names_and_the_anonymous_labels() {
    let (_dir, volumes) = volumes();
    let labels = [(LABEL_PROJECT.to_string(), "shop".to_string())].into();
    let a = volumes.create_anonymous(&labels).unwrap();
    let b = volumes.create_anonymous(&labels).unwrap();
    assert_ne!(a.name, b.name);
    assert_eq!(a.name.len(), 64);
    assert!(a.name.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(a.is_anonymous());
    assert_eq!(a.labels.get(LABEL_DOCKER_ANONYMOUS), Some(&String::new()));
    assert_eq!(a.project(), Some("shop"));
}

#[test]
fn anonymous_lists_only_anonymous_volumes_whatever_their_names() {
    let (_dir, volumes) = volumes();
    let labels = StringMap::new();
    let a = volumes.create_anonymous(&labels).unwrap();
    let b = volumes.create_anonymous(&labels).unwrap();
    volumes.ensure(&request("shop_data", "shop")).unwrap();
    // A named volume that merely looks like an anonymous one.
    let lookalike = "0".repeat(64);
    volumes.ensure(&request(&lookalike, "shop")).unwrap();
    let mut expected = vec![a.name.as_str(), b.name.as_str()];
    expected.sort();
    assert_eq!(names(&volumes.anonymous().unwrap()), expected);
}

#[test]
fn prune_removes_only_unused_anonymous_volumes_unless_all() {
    let (_dir, volumes) = volumes();
    volumes.ensure(&request("shop_data", "shop")).unwrap();
    let labels = StringMap::new();
    let used = volumes.create_anonymous(&labels).unwrap();
    let unused = volumes.create_anonymous(&labels).unwrap();
    let in_use = BTreeSet::from([used.name.clone()]);
    let pruned = volumes.prune(false, None, &in_use).unwrap();
    assert_eq!(pruned.removed, [unused.name]);
    assert!(pruned.errors.is_empty());
    let left = volumes.list().unwrap();
    assert_eq!(left.len(), 2);
    let pruned = volumes.prune(true, None, &in_use).unwrap();
    assert_eq!(pruned.removed, ["shop_data"]);
    assert_eq!(names(&volumes.list().unwrap()), [used.name.as_str()]);
}

#[test]
fn a_project_prune_leaves_other_projects_and_external_volumes_alone() {
    let (_dir, volumes) = volumes();
    volumes.ensure(&request("shop_data", "shop")).unwrap();
    volumes.ensure(&request("blog_data", "blog")).unwrap();
    let external = VolumeRequest {
        name: "certs".into(),
        ..VolumeRequest::default()
    };
    volumes.ensure(&external).unwrap();
    let pruned = volumes.prune(true, Some("shop"), &BTreeSet::new()).unwrap();
    assert_eq!(pruned.removed, ["shop_data"]);
    assert_eq!(names(&volumes.list().unwrap()), ["blog_data", "certs"]);
}

#[test]
fn a_failed_removal_does_not_stop_the_prune() {
    let (_dir, volumes) = volumes();
    let tmpfs = VolumeRequest {
        name: "a_cache".into(),
        driver_opts: [("type".to_string(), "tmpfs".to_string())].into(),
        ..VolumeRequest::default()
    };
    volumes.ensure(&tmpfs).unwrap();
    volumes.mount("a_cache").unwrap();
    volumes.ensure(&request("b_data", "shop")).unwrap();
    volumes.driver().mounter().fail_unmounts();
    let pruned = volumes.prune(true, None, &BTreeSet::new()).unwrap();
    assert_eq!(pruned.removed, ["b_data"]);
    assert_eq!(pruned.errors.len(), 1);
    let message = pruned.errors[0].to_string();
    assert!(
        message.starts_with("volume a_cache: failed to unmount"),
        "{message}"
    );
}

#[test]
fn validate_refuses_unknown_drivers_and_bad_options_but_not_external_ones() {
    let mut req = request("shop_data", "shop");
    req.driver = Some("nfs-plugin".into());
    let err = validate(&req).unwrap_err().to_string();
    assert!(
        err.contains("unknown volume driver \"nfs-plugin\""),
        "{err}"
    );
    req.driver = None;
    req.driver_opts = [("type".to_string(), "cifs".to_string())].into();
    assert!(validate(&req).is_err());
    req.external = true;
    validate(&req).unwrap();
    req.name = "../x".into();
    assert!(validate(&req).is_err());
}

#[test]
fn ensure_with_an_unknown_driver_creates_nothing() {
    let volumes = Volumes::new(FakeDriver::new());
    let mut req = request("shop_data", "shop");
    req.driver = Some("convoy".into());
    assert!(volumes.ensure(&req).is_err());
    assert!(volumes.driver().calls().is_empty());
}

#[test]
fn remove_and_prune_go_through_the_driver() {
    let volumes = Volumes::new(FakeDriver::new());
    volumes.ensure(&request("shop_data", "shop")).unwrap();
    let path = volumes.mount("shop_data").unwrap();
    assert_eq!(path, std::path::Path::new("/fake/volumes/shop_data/_data"));
    volumes.remove("shop_data", &[]).unwrap();
    let calls = volumes.driver().calls();
    let expected = ["shop_data"; 3].map(String::from);
    assert_eq!(
        calls,
        [
            DriverCall::Create(expected[0].clone()),
            DriverCall::Mount(expected[1].clone()),
            DriverCall::Remove(expected[2].clone()),
        ]
    );
}
