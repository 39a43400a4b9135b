//! Layer unpack against the real filesystem: ordinary layers, whiteouts, and
//! hostile layers that try to write outside the target.
//!
//! Root tests (chown, mknod, trusted xattrs): `#[ignore]`d so that a non-root
//! run reports them as skipped; `scripts/test.sh` runs them with
//! `--include-ignored` when it is root.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use rcompose_runtime::unpack::{Compression, Mode, unpack_layer};
use sha2::{Digest, Sha256};

/// One raw tar entry; names and link targets are written byte for byte, so a
/// test can build what a friendly tar writer refuses (`../x`, `/etc/x`).
struct Raw {
    name: String,
    kind: tar::EntryType,
    link: String,
    data: &'static [u8],
    mode: u32,
}

fn raw(name: &str, kind: tar::EntryType, link: &str, data: &'static [u8], mode: u32) -> Raw {
    Raw {
        name: name.to_string(),
        kind,
        link: link.to_string(),
        data,
        mode,
    }
}
fn file(name: &str, data: &'static [u8]) -> Raw {
    raw(name, tar::EntryType::Regular, "", data, 0o644)
}
fn dir(name: &str) -> Raw {
    raw(name, tar::EntryType::Directory, "", b"", 0o755)
}
fn symlink(name: &str, link: &str) -> Raw {
    raw(name, tar::EntryType::Symlink, link, b"", 0o777)
}
fn hardlink(name: &str, link: &str) -> Raw {
    raw(name, tar::EntryType::Link, link, b"", 0o644)
}
fn chardev(name: &str) -> Raw {
    raw(name, tar::EntryType::Char, "", b"", 0o666)
}

fn tar_of(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    for raw in entries {
        let mut header = tar::Header::new_ustar();
        header.as_old_mut().name[..raw.name.len()].copy_from_slice(raw.name.as_bytes());
        header.as_old_mut().linkname[..raw.link.len()].copy_from_slice(raw.link.as_bytes());
        header.set_entry_type(raw.kind);
        header.set_size(raw.data.len() as u64);
        header.set_mode(raw.mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        if raw.kind == tar::EntryType::Char {
            header.set_device_major(1).unwrap();
            header.set_device_minor(3).unwrap();
        }
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(raw.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// Every path under `dir` with its kind and content, to compare before/after.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let key = path.strip_prefix(dir).unwrap().display().to_string();
            let value = if meta.is_dir() {
                stack.push(path.clone());
                "dir".to_string()
            } else if meta.file_type().is_symlink() {
                format!("link {}", fs::read_link(&path).unwrap().display())
            } else {
                format!("file {:?}", fs::read(&path).unwrap())
            };
            out.insert(key, value);
        }
    }
    out
}

struct Sandbox {
    _tmp: tempfile::TempDir,
    outside: std::path::PathBuf,
    target: std::path::PathBuf,
}

/// A target directory with a sibling "outside" tree holding files a hostile
/// layer would like to overwrite.
impl Sandbox {
    /// Where a path of the outside tree lands when a layer names it inside the target.
    fn outside_in_target(&self, rel: &str) -> std::path::PathBuf {
        let outside = self.outside.strip_prefix("/").unwrap();
        self.target.join(outside).join(rel)
    }
}

fn sandbox() -> Sandbox {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    let target = tmp.path().join("target");
    fs::create_dir_all(outside.join("etc")).unwrap();
    fs::write(outside.join("etc/passwd"), "host secret").unwrap();
    fs::create_dir(&target).unwrap();
    Sandbox {
        outside,
        target,
        _tmp: tmp,
    }
}

fn assert_root() {
    assert!(rustix::process::geteuid().is_root(), "this test needs root");
}

/// Unpacks the entries `make(outside)` builds and checks that nothing under
/// the sandbox's outside tree changed.
fn hostile(make: impl Fn(&str) -> Vec<Raw>) -> (Sandbox, Result<(), String>) {
    let sb = sandbox();
    let before = snapshot(&sb.outside);
    let tar = tar_of(&make(&sb.outside.display().to_string()));
    let result = unpack_layer(&tar[..], Compression::None, &sb.target, Mode::Flat)
        .map(|_| ())
        .map_err(|e| format!("{e:?}"));
    assert_eq!(
        snapshot(&sb.outside),
        before,
        "files outside the target changed"
    );
    (sb, result)
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn dot_dot_paths_land_inside_the_target() {
    assert_root();
    let (sb, result) = hostile(|_| {
        vec![
            file("../../outside/etc/passwd", b"pwned"),
            file("./../x", b"x"),
        ]
    });
    result.unwrap();
    assert_eq!(
        fs::read(sb.target.join("outside/etc/passwd")).unwrap(),
        b"pwned"
    );
    assert_eq!(fs::read(sb.target.join("x")).unwrap(), b"x");
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn absolute_paths_land_inside_the_target() {
    assert_root();
    let (sb, result) = hostile(|outside| vec![file(&format!("{outside}/etc/passwd"), b"pwned")]);
    result.unwrap();
    let inside = sb.outside_in_target("etc/passwd");
    assert_eq!(fs::read(inside).unwrap(), b"pwned");
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn an_absolute_symlinked_parent_never_leads_outside() {
    assert_root();
    // The link is resolved inside the target, where its destination does not
    // exist: the layer is refused (or, were it there, written inside).
    let (sb, result) =
        hostile(|outside| vec![symlink("abs", outside), file("abs/etc/passwd", b"pwned")]);
    if result.is_ok() {
        let inside = sb.outside_in_target("etc/passwd");
        assert_eq!(fs::read(inside).unwrap(), b"pwned");
    }
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_relative_symlinked_parent_climbing_out_stops_at_the_target_root() {
    assert_root();
    let (sb, result) = hostile(|_| {
        vec![
            symlink("rel", "../../../../../../.."),
            file("rel/escape", b"pwned"),
        ]
    });
    result.unwrap();
    assert_eq!(fs::read(sb.target.join("escape")).unwrap(), b"pwned");
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_symlink_written_over_by_a_file_is_replaced_not_followed() {
    assert_root();
    let (sb, result) = hostile(|outside| {
        vec![
            symlink("f", &format!("{outside}/etc/passwd")),
            file("f", b"pwned"),
        ]
    });
    result.unwrap();
    assert!(fs::symlink_metadata(sb.target.join("f")).unwrap().is_file());
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn hard_links_cannot_reach_host_files() {
    assert_root();
    let (sb, result) =
        hostile(|outside| vec![hardlink("stolen", &format!("{outside}/etc/passwd"))]);
    assert!(
        result.is_err(),
        "a hard link to a file missing in the target must fail"
    );
    assert!(!sb.target.join("stolen").exists());
    let (_, result) = hostile(|_| {
        vec![
            symlink("up", "../.."),
            hardlink("stolen", "up/outside/etc/passwd"),
        ]
    });
    assert!(result.is_err());
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn a_hostile_layer_in_overlay_mode_writes_nothing_outside_either() {
    assert_root();
    let sb = sandbox();
    let before = snapshot(&sb.outside);
    let outside = sb.outside.display().to_string();
    let tar = tar_of(&[
        symlink("abs", &outside),
        file("abs/.wh.etc", b""),
        file("abs/etc/.wh..wh..opq", b""),
        file("../../outside/etc/.wh.passwd", b""),
    ]);
    // Refusing the layer is as good as writing inside; writing outside is not.
    let _ = unpack_layer(&tar[..], Compression::None, &sb.target, Mode::Overlay);
    assert_eq!(snapshot(&sb.outside), before);
    let tar = tar_of(&[symlink("rel", "../.."), file("rel/outside/.wh.etc", b"")]);
    let _ = unpack_layer(&tar[..], Compression::None, &sb.target, Mode::Flat);
    assert_eq!(snapshot(&sb.outside), before);
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn device_nodes_in_a_layer_are_skipped() {
    assert_root();
    let sb = sandbox();
    let tar = tar_of(&[chardev("dev/mem"), file("ok", b"1")]);
    let report = unpack_layer(&tar[..], Compression::None, &sb.target, Mode::Flat).unwrap();
    assert_eq!(report.skipped_devices, 1);
    assert!(!sb.target.join("dev/mem").exists());
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn flat_whiteouts_delete_lower_files_and_opaque_dirs_keep_their_own_layer() {
    assert_root();
    let sb = sandbox();
    let lower = tar_of(&[
        dir("d"),
        file("d/old", b"1"),
        file("gone", b"1"),
        file("kept", b"1"),
    ]);
    unpack_layer(&lower[..], Compression::None, &sb.target, Mode::Flat).unwrap();
    let upper = tar_of(&[
        file("d/new", b"2"),
        file("d/.wh..wh..opq", b""),
        file(".wh.gone", b""),
    ]);
    unpack_layer(&upper[..], Compression::None, &sb.target, Mode::Flat).unwrap();
    assert!(!sb.target.join("gone").exists());
    assert!(sb.target.join("kept").exists());
    assert!(!sb.target.join("d/old").exists());
    assert_eq!(fs::read(sb.target.join("d/new")).unwrap(), b"2");
}

#[test]
#[ignore = "needs root; scripts/test.sh runs it when root"]
fn overlay_whiteouts_become_overlayfs_markers() {
    assert_root();
    let sb = sandbox();
    let upper = tar_of(&[dir("d"), file("d/.wh..wh..opq", b""), file(".wh.gone", b"")]);
    unpack_layer(&upper[..], Compression::None, &sb.target, Mode::Overlay).unwrap();
    let meta = fs::symlink_metadata(sb.target.join("gone")).unwrap();
    assert!(meta.file_type().is_char_device());
    assert_eq!(meta.rdev(), 0);
    let opaque = rustix::fs::getxattr(sb.target.join("d"), "trusted.overlay.opaque", &mut [0u8; 4]);
    assert_eq!(opaque.unwrap(), 1);
}

#[test]
fn the_diff_id_is_the_digest_of_the_uncompressed_stream_whatever_the_compression() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = tar_of(&[dir("a"), file("a/b", b"hello")]);
    let expected = format!("sha256:{}", hex::encode(Sha256::digest(&tar)));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&tar[..], 1).unwrap();
    for (i, (blob, compression)) in [
        (&tar, Compression::None),
        (&gz, Compression::Gzip),
        (&zst, Compression::Zstd),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(Compression::sniff(blob), compression);
        let target = tmp.path().join(i.to_string());
        fs::create_dir(&target).unwrap();
        let report = unpack_layer(&blob[..], compression, &target, Mode::Flat).unwrap();
        assert_eq!(report.diff_id, expected);
        assert_eq!(fs::read(target.join("a/b")).unwrap(), b"hello");
    }
}
