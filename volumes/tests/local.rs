//! Root tests of the local driver's driver_opts volumes against the real
//! kernel: a tmpfs volume really is a tmpfs of the asked size, a bind volume
//! shows its device directory, and removal unmounts without touching the
//! device's files.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::{Scratch, assert_root};
use nix::sys::statfs::{TMPFS_MAGIC, statfs};
use rcompose_volumes::{HostMount, LinuxMounter, LocalDriver, Mounter as _, VolumeDriver};

fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_tmpfs_volume_is_a_tmpfs_with_its_size_and_mode_until_removed() {
    assert_root();
    let scratch = Scratch::new();
    let driver = LocalDriver::new(scratch.paths(), LinuxMounter);
    let o = opts(&[
        ("type", "tmpfs"),
        ("device", "tmpfs"),
        ("o", "size=64m,mode=0700"),
    ]);
    driver.create("cache", &BTreeMap::new(), &o).unwrap();
    let data = driver.mount("cache").unwrap();
    driver.mount("cache").unwrap();
    let fs_info = statfs(&data).unwrap();
    assert_eq!(fs_info.filesystem_type(), TMPFS_MAGIC);
    let size = fs_info.blocks() * fs_info.block_size() as u64;
    assert_eq!(size, 64 * 1024 * 1024);
    assert_eq!(
        fs::metadata(&data).unwrap().permissions().mode() & 0o7777,
        0o700
    );
    assert_eq!(scratch.mounts(), vec![data.clone()], "mounted exactly once");
    driver.remove("cache").unwrap();
    assert!(scratch.mounts().is_empty());
    assert!(!driver.paths().volume_dir("cache").exists());
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_bind_volume_shows_its_device_and_removal_keeps_the_device_files() {
    assert_root();
    let scratch = Scratch::new();
    let device = scratch.path().join("device");
    fs::create_dir(&device).unwrap();
    fs::write(device.join("hello.txt"), "from the host").unwrap();
    let driver = LocalDriver::new(scratch.paths(), LinuxMounter);
    let device_text = device.to_str().unwrap();
    let o = opts(&[("type", "none"), ("o", "bind"), ("device", device_text)]);
    driver.create("src", &BTreeMap::new(), &o).unwrap();
    let data = driver.mount("src").unwrap();
    assert_eq!(
        fs::read_to_string(data.join("hello.txt")).unwrap(),
        "from the host"
    );
    fs::write(data.join("back.txt"), "from the volume").unwrap();
    assert!(device.join("back.txt").exists());
    driver.remove("src").unwrap();
    assert!(scratch.mounts().is_empty());
    assert!(device.join("hello.txt").exists() && device.join("back.txt").exists());
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_read_only_bind_volume_refuses_writes() {
    assert_root();
    let scratch = Scratch::new();
    let device = scratch.path().join("device");
    fs::create_dir(&device).unwrap();
    let driver = LocalDriver::new(scratch.paths(), LinuxMounter);
    let o = opts(&[
        ("type", "none"),
        ("o", "bind,ro"),
        ("device", device.to_str().unwrap()),
    ]);
    driver.create("ro_src", &BTreeMap::new(), &o).unwrap();
    let data = driver.mount("ro_src").unwrap();
    let err = fs::write(data.join("x"), "no").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(nix::errno::Errno::EROFS as i32));
    driver.remove("ro_src").unwrap();
    assert!(scratch.mounts().is_empty());
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_mount_is_seen_exactly_at_its_mount_point() {
    assert_root();
    let scratch = Scratch::new();
    let target = scratch.path().join("point");
    fs::create_dir_all(target.join("inside")).unwrap();
    let tmpfs = HostMount {
        source: "tmpfs".into(),
        target: target.clone(),
        fstype: "tmpfs".into(),
        options: vec!["size=1m".into()],
    };
    assert!(!LinuxMounter.is_mounted(&target).unwrap());
    LinuxMounter.mount(&tmpfs).unwrap();
    fs::create_dir(target.join("below")).unwrap();
    assert!(LinuxMounter.is_mounted(&target).unwrap());
    assert_eq!(scratch.mounts(), vec![target.clone()]);
    assert!(!LinuxMounter.is_mounted(&target.join("below")).unwrap());
    assert!(
        !LinuxMounter
            .is_mounted(&scratch.path().join("missing"))
            .unwrap()
    );
    LinuxMounter.unmount(&target).unwrap();
    assert!(!LinuxMounter.is_mounted(&target).unwrap());
    assert!(
        target.join("inside").is_dir(),
        "the directory under the mount is back"
    );
}
