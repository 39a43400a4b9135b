//! Root tests of configs and secrets on a real tmpfs: owner and mode as
//! asked, and nothing mounted or left after removal.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;

use common::{Scratch, assert_root};
use nix::sys::statfs::{TMPFS_MAGIC, statfs};
use rcompose_volumes::secrets::resolve;
use rcompose_volumes::{FileKind, FileRequest, FileSource, LinuxMounter, SecretFiles};

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_secret_is_a_file_on_a_private_tmpfs_with_the_asked_owner_and_mode() {
    assert_root();
    let scratch = Scratch::new();
    let files = SecretFiles::new(scratch.paths(), LinuxMounter);
    let request = FileRequest {
        kind: FileKind::Secret,
        name: "x".into(),
        source: FileSource::Content("s3cret".into()),
        target: None,
        uid: Some(1000),
        gid: Some(1000),
        mode: Some(0o400),
    };
    let resolved = resolve(&request, &BTreeMap::new()).unwrap();
    let delivered = files.deliver("c0ffee", &[resolved]).unwrap();
    let dir = files.dir("c0ffee");
    assert_eq!(statfs(&dir).unwrap().filesystem_type(), TMPFS_MAGIC);
    assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o7777, 0o700);
    let meta = fs::metadata(&delivered.paths[0]).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (1000, 1000, 0o400)
    );
    assert_eq!(fs::read_to_string(&delivered.paths[0]).unwrap(), "s3cret");
    assert_eq!(delivered.mounts[0].target, "/run/secrets/x");
    files.remove("c0ffee").unwrap();
    assert!(scratch.mounts().is_empty(), "the tmpfs is unmounted");
    assert!(!dir.exists());
    files.remove("c0ffee").unwrap();
}
