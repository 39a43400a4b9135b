//! Unit tests of the mount plan: pure, no filesystem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rcompose_spec::model::{
    BindOptions, ByteSize, MountType, ServiceVolume, TmpfsOptions, VolumeOptions, parse_volume,
};

use super::*;

fn names() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("data".to_string(), "shop_data".to_string()),
        ("cache".to_string(), "shop_cache".to_string()),
    ])
}

fn plan_with(
    volumes: &[ServiceVolume],
    tmpfs: &[&str],
    from: &[InheritedMounts],
) -> Result<Vec<PlannedMount>, PlanError> {
    let tmpfs: Vec<String> = tmpfs.iter().map(|s| s.to_string()).collect();
    let names = names();
    plan_mounts(&PlanInput {
        service: "web",
        volumes,
        tmpfs: &tmpfs,
        project_dir: Path::new("/srv/shop"),
        home: Some(Path::new("/home/ann")),
        named_volumes: &names,
        volumes_from: from,
    })
}

fn short(specs: &[&str]) -> Vec<ServiceVolume> {
    specs.iter().map(|s| parse_volume(s).unwrap()).collect()
}

fn plan(specs: &[&str]) -> Result<Vec<PlannedMount>, PlanError> {
    plan_with(&short(specs), &[], &[])
}

fn targets(mounts: &[PlannedMount]) -> Vec<&str> {
    mounts.iter().map(PlannedMount::target).collect()
}

fn bind_source(spec: &str) -> PathBuf {
    match plan(&[spec]).unwrap().remove(0) {
        PlannedMount::Bind { source, .. } => source,
        other => panic!("not a bind: {other:?}"),
    }
}

fn long(kind: MountType, source: Option<&str>, target: &str) -> ServiceVolume {
    ServiceVolume {
        kind,
        source: source.map(str::to_string),
        target: target.to_string(),
        ..ServiceVolume::default()
    }
}

#[test]
fn relative_bind_sources_resolve_against_the_project_directory() {
    assert_eq!(bind_source("./data:/d"), PathBuf::from("/srv/shop/data"));
    assert_eq!(bind_source("../x:/d"), PathBuf::from("/srv/x"));
    assert_eq!(
        bind_source("./a/./b/../c:/d"),
        PathBuf::from("/srv/shop/a/c")
    );
    assert_eq!(bind_source("/abs/path/:/d"), PathBuf::from("/abs/path"));
}

#[test]
fn a_tilde_expands_to_the_home_directory() {
    assert_eq!(bind_source("~/src:/d"), PathBuf::from("/home/ann/src"));
    assert_eq!(bind_source("~:/d"), PathBuf::from("/home/ann"));
    assert!(matches!(
        plan(&["~bob/x:/d"]),
        Err(PlanError::InvalidSource { .. })
    ));
    let names = names();
    let input = PlanInput {
        service: "web",
        volumes: &short(&["~/x:/d"]),
        tmpfs: &[],
        project_dir: Path::new("/p"),
        home: None,
        named_volumes: &names,
        volumes_from: &[],
    };
    assert!(matches!(
        plan_mounts(&input),
        Err(PlanError::InvalidSource { .. })
    ));
}

#[test]
fn dot_dot_never_climbs_above_the_root() {
    assert_eq!(bind_source("../../../../../etc:/d"), PathBuf::from("/etc"));
    assert_eq!(
        normalize_lexically(Path::new("/a/../../b")),
        PathBuf::from("/b")
    );
    assert_eq!(
        normalize_lexically(Path::new("a/../../b")),
        PathBuf::from("../b")
    );
}

#[test]
fn named_and_anonymous_volumes_are_told_apart() {
    let mounts = plan(&["data:/var/lib/data:ro", "/scratch"]).unwrap();
    assert_eq!(
        mounts,
        vec![
            PlannedMount::Anonymous {
                target: "/scratch".into(),
                read_only: false,
                nocopy: false,
            },
            PlannedMount::Named {
                volume: "shop_data".into(),
                target: "/var/lib/data".into(),
                read_only: true,
                nocopy: false,
                subpath: None,
            },
        ]
    );
}

#[test]
fn an_undeclared_named_volume_is_an_error() {
    let err = plan(&["nope:/x"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"services.web.volumes: volume "nope" is not declared in the top-level volumes"#
    );
}

#[test]
fn nested_mounts_come_after_their_parents_and_order_is_otherwise_kept() {
    let mounts = plan(&[
        "/data/cache/x",
        "/data/cache",
        "./b:/b",
        "data:/data",
        "./a:/a",
    ])
    .unwrap();
    assert_eq!(
        targets(&mounts),
        ["/b", "/data", "/a", "/data/cache", "/data/cache/x"]
    );
}

#[test]
fn a_duplicate_target_is_an_error_naming_it() {
    let err = plan(&["data:/data", "./x:/data/"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "services.web: duplicate mount target /data"
    );
    let err = plan_with(&short(&["data:/run"]), &["/run"], &[]).unwrap_err();
    assert_eq!(err.to_string(), "services.web: duplicate mount target /run");
}

#[test]
fn targets_must_be_absolute_and_not_the_root() {
    let err = |t: &str| {
        plan_with(&[long(MountType::Volume, None, t)], &[], &[])
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err("data"),
        r#"services.web.volumes: invalid mount target "data": must be an absolute path"#
    );
    assert_eq!(
        err("/"),
        r#"services.web.volumes: invalid mount target "/": must not be `/`"#
    );
    assert_eq!(
        err("/a/../b"),
        r#"services.web.volumes: invalid mount target "/a/../b": must not contain `..`"#
    );
    assert_eq!(targets(&plan(&["/a/./b/"]).unwrap()), ["/a/b"]);
}

#[test]
fn npipe_cluster_and_image_mounts_are_not_supported() {
    for (kind, name) in [
        (MountType::Npipe, "npipe"),
        (MountType::Cluster, "cluster"),
        (MountType::Image, "image"),
    ] {
        let err = plan_with(&[long(kind, Some("x"), "/x")], &[], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("services.web.volumes: mount type {name} at /x is not supported")
        );
    }
}

#[test]
fn tmpfs_entries_read_size_mode_and_flags() {
    let mounts = plan_with(&[], &["/run:size=64m,mode=1777,uid=1000,exec", "/tmp"], &[]).unwrap();
    assert_eq!(
        mounts,
        vec![
            PlannedMount::Tmpfs {
                target: "/run".into(),
                size: Some(64 << 20),
                mode: Some(0o1777),
                read_only: false,
                flags: vec!["uid=1000".into(), "exec".into()],
            },
            PlannedMount::Tmpfs {
                target: "/tmp".into(),
                size: None,
                mode: None,
                read_only: false,
                flags: vec![],
            },
        ]
    );
}

#[test]
fn invalid_tmpfs_options_are_refused() {
    for entry in [
        "/run:size=lots",
        "/run:mode=999",
        "/run:bogus",
        "/run:color=red",
    ] {
        let err = plan_with(&[], &[entry], &[]).unwrap_err();
        assert!(
            matches!(err, PlanError::InvalidOption { field: "tmpfs", .. }),
            "{entry}: {err}"
        );
    }
    let err = plan_with(&[], &["run:size=1m"], &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"services.web.tmpfs: invalid mount target "run": must be an absolute path"#
    );
}

#[test]
fn a_long_form_tmpfs_keeps_its_size_and_mode() {
    let volume = ServiceVolume {
        tmpfs: Some(TmpfsOptions {
            size: Some(ByteSize(1 << 20)),
            mode: Some(0o700),
            ..TmpfsOptions::default()
        }),
        read_only: true,
        ..long(MountType::Tmpfs, None, "/cache")
    };
    let mount = plan_with(&[volume], &[], &[]).unwrap().remove(0);
    assert_eq!(
        mount.mount_spec(None).unwrap().options,
        [
            "noexec",
            "nosuid",
            "nodev",
            "ro",
            "rprivate",
            "size=1048576",
            "mode=700"
        ]
    );
}

fn inherited(entry: &str, mounts: Vec<PlannedMount>) -> InheritedMounts {
    InheritedMounts {
        from: parse_volumes_from("web", entry).unwrap(),
        mounts,
    }
}

fn named(volume: &str, target: &str, read_only: bool) -> PlannedMount {
    PlannedMount::Named {
        volume: volume.into(),
        target: target.into(),
        read_only,
        nocopy: false,
        subpath: None,
    }
}

#[test]
fn volumes_from_entries_are_read_with_their_mode() {
    let read = |e: &str| parse_volumes_from("web", e).unwrap();
    assert_eq!(
        read("db"),
        VolumesFromRef {
            container: false,
            name: "db".into(),
            read_only: false
        }
    );
    assert!(read("db:ro").read_only);
    assert!(!read("db:rw").read_only);
    let c = read("container:legacy:ro");
    assert!(c.container && c.read_only && c.name == "legacy");
    for bad in ["", "db:xx", "container:", "a:b:ro"] {
        assert!(parse_volumes_from("web", bad).is_err(), "{bad}");
    }
}

#[test]
fn volumes_from_ro_makes_inherited_mounts_read_only_and_rw_keeps_them() {
    let from = [
        inherited("db:ro", vec![named("shop_db", "/db", false)]),
        inherited(
            "logs:rw",
            vec![
                named("shop_logs", "/logs", true),
                named("shop_x", "/x", false),
            ],
        ),
    ];
    let mounts = plan_with(&[], &[], &from).unwrap();
    assert_eq!(
        mounts,
        vec![
            named("shop_db", "/db", true),
            named("shop_logs", "/logs", true),
            named("shop_x", "/x", false)
        ]
    );
}

#[test]
fn own_mounts_replace_inherited_ones_at_the_same_target() {
    let from = [inherited("db", vec![named("shop_db", "/data", false)])];
    let mounts = plan_with(&short(&["data:/data"]), &[], &from).unwrap();
    assert_eq!(mounts, vec![named("shop_data", "/data", false)]);
}

#[test]
fn an_unnamed_inherited_anonymous_volume_is_an_error() {
    let anon = PlannedMount::Anonymous {
        target: "/a".into(),
        read_only: false,
        nocopy: false,
    };
    let err = plan_with(&[], &[], &[inherited("db", vec![anon])]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "services.web.volumes_from: anonymous volume of db at /a has no name"
    );
}

fn long_bind(source: &str, target: &str, create_host_path: bool) -> ServiceVolume {
    ServiceVolume {
        bind: Some(BindOptions {
            create_host_path,
            ..BindOptions::default()
        }),
        ..long(MountType::Bind, Some(source), target)
    }
}

#[test]
fn a_missing_bind_source_is_an_error_unless_it_may_be_created() {
    let volumes = [long_bind("/x", "/x", false), long_bind("./y", "/y", true)];
    let mounts = plan_with(&volumes, &[], &[]).unwrap();
    let err = check_bind_sources("web", &mounts, |_| false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "services.web.volumes: bind source /x does not exist"
    );
    let create = check_bind_sources("web", &mounts, |p| p == Path::new("/x")).unwrap();
    assert_eq!(create, vec![PathBuf::from("/srv/shop/y")]);
}

#[test]
fn short_syntax_binds_create_their_missing_source() {
    let mounts = plan(&["./new:/n"]).unwrap();
    let create = check_bind_sources("web", &mounts, |_| false).unwrap();
    assert_eq!(create, vec![PathBuf::from("/srv/shop/new")]);
}

#[test]
fn bind_mount_entries_are_recursive_private_binds() {
    let mounts = plan(&["./src:/app:ro,z", "/h:/h:rshared"]).unwrap();
    let app = mounts[0].mount_spec(None).unwrap();
    assert_eq!(
        app,
        MountEntry {
            target: "/app".into(),
            source: "/srv/shop/src".into(),
            kind: "bind".into(),
            options: vec!["rbind".into(), "ro".into(), "rprivate".into()],
            copy_up: false,
        }
    );
    assert_eq!(
        mounts[1].mount_spec(None).unwrap().options,
        ["rbind", "rw", "rshared"]
    );
    let mut flat = long_bind("/h", "/h", false);
    flat.bind.as_mut().unwrap().recursive = Some("disabled".into());
    let mount = plan_with(&[flat], &[], &[]).unwrap().remove(0);
    assert_eq!(mount.mount_spec(None).unwrap().options[0], "bind");
}

#[test]
fn an_invalid_propagation_is_refused() {
    let mut volume = long_bind("/h", "/h", false);
    volume.bind.as_mut().unwrap().propagation = Some("sideways".into());
    let err = plan_with(&[volume], &[], &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"services.web.volumes: invalid option "propagation=sideways" for /h"#
    );
}

#[test]
fn volume_entries_copy_up_unless_nocopy_or_subpath() {
    let host = Path::new("/var/lib/rcompose/volumes/shop_data/_data");
    let mounts = plan(&["data:/d", "cache:/c:nocopy", "/anon"]).unwrap();
    let entry = mounts[0].mount_spec(Some(host)).unwrap();
    assert_eq!(entry.source, host.display().to_string());
    assert_eq!((entry.kind.as_str(), entry.copy_up), ("bind", true));
    assert_eq!(entry.options, ["rbind", "rw", "rprivate"]);
    assert!(!mounts[1].mount_spec(Some(host)).unwrap().copy_up);
    assert!(mounts[2].mount_spec(Some(host)).unwrap().copy_up);
    assert!(matches!(
        mounts[0].mount_spec(None),
        Err(PlanError::NoHostPath { .. })
    ));
}

#[test]
fn a_subpath_must_stay_inside_the_volume() {
    let with_subpath = |sub: &str| ServiceVolume {
        volume: Some(VolumeOptions {
            subpath: Some(sub.into()),
            ..VolumeOptions::default()
        }),
        ..long(MountType::Volume, Some("data"), "/d")
    };
    let mount = plan_with(&[with_subpath("./a/b/")], &[], &[])
        .unwrap()
        .remove(0);
    assert!(matches!(&mount, PlannedMount::Named { subpath: Some(s), .. } if s == "a/b"));
    assert!(!mount.mount_spec(Some(Path::new("/v"))).unwrap().copy_up);
    for bad in ["../x", "/abs", "a/../../b", "."] {
        assert!(plan_with(&[with_subpath(bad)], &[], &[]).is_err(), "{bad}");
    }
}

#[test]
fn tmpfs_entries_are_noexec_nosuid_nodev_unless_lifted() {
    let mounts = plan_with(&[], &["/run:size=64m,mode=1777", "/x:exec,ro"], &[]).unwrap();
    assert_eq!(
        mounts[0].mount_spec(None).unwrap(),
        MountEntry {
            target: "/run".into(),
            source: "tmpfs".into(),
            kind: "tmpfs".into(),
            options: [
                "noexec",
                "nosuid",
                "nodev",
                "rw",
                "rprivate",
                "size=67108864",
                "mode=1777"
            ]
            .map(String::from)
            .to_vec(),
            copy_up: false,
        }
    );
    assert_eq!(
        mounts[1].mount_spec(None).unwrap().options,
        ["nosuid", "nodev", "exec", "ro", "rprivate"]
    );
}
