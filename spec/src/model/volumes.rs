//! Service mounts: the short syntax `[SOURCE:]TARGET[:MODE]` and the long form.
//!
//! Invariant: after reading, every mount is in long form with its `type` set. A
//! short-syntax source starting with `.`, `/` or `~` is a bind mount, any other
//! source a named volume, and no source an anonymous volume. Relative paths are
//! kept as written: the loader resolves them against the project directory.

use std::borrow::Cow;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::bytes::ByteSize;
use super::flex::{self, BoolOrString, Extensions, ListOrDict, NumberOrString};

/// Kind of a service mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    /// A named or anonymous volume.
    #[default]
    Volume,
    /// A host path.
    Bind,
    /// A memory-backed filesystem.
    Tmpfs,
    /// A Windows named pipe.
    Npipe,
    /// A cluster volume (Swarm).
    Cluster,
    /// The filesystem of an image.
    Image,
}

/// One mount of a service, in long form.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}, "required" = ["type"]))]
pub struct ServiceVolume {
    /// Mount type.
    #[serde(rename = "type")]
    pub kind: MountType,
    /// Volume name, host path or image; absent for anonymous volumes and tmpfs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Path inside the container.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// Mount read-only.
    #[serde(
        deserialize_with = "flex::bool_",
        skip_serializing_if = "std::ops::Not::not"
    )]
    #[schemars(with = "BoolOrString")]
    pub read_only: bool,
    /// macOS consistency hint (`cached`, `delegated`, `consistent`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistency: Option<String>,
    /// Options of a bind mount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<BindOptions>,
    /// Options of a volume mount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeOptions>,
    /// Options of a tmpfs mount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<TmpfsOptions>,
    /// Options of an image mount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageOptions>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// Options of a bind mount.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct BindOptions {
    /// Mount propagation (`rprivate`, `shared`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagation: Option<String>,
    /// Create the host path when missing.
    #[serde(
        deserialize_with = "flex::bool_",
        skip_serializing_if = "std::ops::Not::not"
    )]
    #[schemars(with = "BoolOrString")]
    pub create_host_path: bool,
    /// Recursive read-only mode (`enabled`, `disabled`, `writable`, `readonly`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["enabled", "disabled", "writable", "readonly"]))]
    pub recursive: Option<String>,
    /// SELinux relabelling, `z` (shared) or `Z` (private).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["z", "Z"]))]
    pub selinux: Option<String>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// Options of a volume mount.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct VolumeOptions {
    /// Labels set on a volume created for this mount.
    #[serde(
        deserialize_with = "flex::list_or_dict",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ListOrDict")]
    pub labels: IndexMap<String, Option<String>>,
    /// Do not copy the image's content into a new volume.
    #[serde(
        deserialize_with = "flex::bool_",
        skip_serializing_if = "std::ops::Not::not"
    )]
    #[schemars(with = "BoolOrString")]
    pub nocopy: bool,
    /// Sub-directory of the volume to mount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// Options of a tmpfs mount.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct TmpfsOptions {
    /// Size limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<ByteSize>,
    /// File mode of the mount point.
    #[serde(
        deserialize_with = "flex::opt_mode",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<NumberOrString>")]
    pub mode: Option<u32>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// Options of an image mount.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct ImageOptions {
    /// Path inside the image to mount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// Why a short-syntax mount could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid volume {spec:?}: {reason}")]
pub struct VolumeError {
    /// The mount as written.
    pub spec: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Whether a short-syntax source is a host path rather than a volume name.
pub fn is_host_path(source: &str) -> bool {
    source.starts_with(['.', '/', '~']) || is_windows_path(source)
}

/// `C:\…` or `C:/…`.
fn is_windows_path(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/')
}

/// Parses `[SOURCE:]TARGET[:MODE]` into a long-form mount.
pub fn parse_volume(spec: &str) -> Result<ServiceVolume, VolumeError> {
    let fail = |reason: String| VolumeError {
        spec: spec.to_string(),
        reason,
    };
    let (source, target, mode) = split_volume(spec).map_err(fail)?;
    if target.is_empty() {
        return Err(fail("missing container path".to_string()));
    }
    let mut volume = ServiceVolume {
        target: target.to_string(),
        ..ServiceVolume::default()
    };
    match source {
        Some(src) if is_host_path(src) => {
            volume.kind = MountType::Bind;
            volume.bind = Some(BindOptions {
                create_host_path: true,
                ..BindOptions::default()
            });
        }
        _ => volume.volume = Some(VolumeOptions::default()),
    }
    volume.source = source.map(str::to_string);
    for option in mode.into_iter().flat_map(|m| m.split(',')) {
        apply_option(&mut volume, option).map_err(fail)?;
    }
    Ok(volume)
}

/// Source, target and mode of a short-syntax mount (Windows drive letters kept).
fn split_volume(spec: &str) -> Result<(Option<&str>, &str, Option<&str>), String> {
    let parts = split_colons(spec);
    match parts[..] {
        [target] => Ok((None, target, None)),
        [source, target] => Ok((Some(source).filter(|s| !s.is_empty()), target, None)),
        [source, target, mode] => Ok((Some(source).filter(|s| !s.is_empty()), target, Some(mode))),
        _ => Err("too many colons".to_string()),
    }
}

/// Splits on `:` except the one after a Windows drive letter (`C:\\`).
fn split_colons(spec: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, _) in spec.match_indices(':') {
        let drive =
            i == start + 1 && spec[i + 1..].starts_with('\\') && is_windows_path(&spec[start..]);
        if !drive {
            parts.push(&spec[start..i]);
            start = i + 1;
        }
    }
    parts.push(&spec[start..]);
    parts
}

/// Applies one comma-separated mode option.
fn apply_option(volume: &mut ServiceVolume, option: &str) -> Result<(), String> {
    match option {
        "ro" => volume.read_only = true,
        "rw" => volume.read_only = false,
        "nocopy" => volume.volume.get_or_insert_default().nocopy = true,
        "z" | "Z" => bind_options(volume, option)?.selinux = Some(option.to_string()),
        "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
            bind_options(volume, option)?.propagation = Some(option.to_string());
        }
        "cached" | "delegated" | "consistent" => volume.consistency = Some(option.to_string()),
        "" => {}
        other => return Err(format!("unknown option {other:?}")),
    }
    Ok(())
}

/// The bind options of a bind mount, or an error naming a bind-only option.
fn bind_options<'v>(
    volume: &'v mut ServiceVolume,
    option: &str,
) -> Result<&'v mut BindOptions, String> {
    if volume.kind != MountType::Bind {
        return Err(format!("option {option:?} only applies to bind mounts"));
    }
    Ok(volume.bind.get_or_insert_default())
}

/// Reads one item of `volumes:`, short or long.
fn to_service_volume(v: Value) -> Result<ServiceVolume, String> {
    match v {
        Value::String(s) => parse_volume(&s).map_err(|e| e.to_string()),
        v @ Value::Object(_) => flex::long_form(v),
        other => Err(format!(
            "invalid volume: expected a string or a mapping, found {}",
            flex::kind(&other)
        )),
    }
}

/// Reads a service's `volumes:`.
pub(crate) fn service_volumes<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<ServiceVolume>, D::Error> {
    flex::via(d, |v| match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.into_iter().map(to_service_volume).collect(),
        other => Err(format!(
            "expected a list of volumes, found {}",
            flex::kind(&other)
        )),
    })
}

/// Schema of a service's `volumes:`.
pub(crate) struct ServiceVolumesSchema;

impl JsonSchema for ServiceVolumesSchema {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "ServiceVolumes".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let long = generator.subschema_for::<ServiceVolume>();
        json_schema!({"type": "array", "items": {"oneOf": [{"type": "string"}, long]}})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_named_volume_with_a_mode_is_read_only() {
        let v = parse_volume("data:/x:ro").unwrap();
        assert_eq!(
            (v.kind, v.source.as_deref(), v.target.as_str(), v.read_only),
            (MountType::Volume, Some("data"), "/x", true)
        );
        assert_eq!(v.volume, Some(VolumeOptions::default()));
    }

    #[test]
    fn relative_absolute_and_home_sources_are_binds() {
        for spec in ["./src:/app", "/abs:/app", "~/x:/app", "../up:/app"] {
            let v = parse_volume(spec).unwrap();
            assert_eq!(v.kind, MountType::Bind, "{spec}");
            assert!(v.bind.unwrap().create_host_path, "{spec}");
        }
        assert_eq!(
            parse_volume("./src:/app").unwrap().source.as_deref(),
            Some("./src")
        );
    }

    #[test]
    fn bind_modes_set_selinux_and_propagation() {
        let v = parse_volume("/abs:/x:rw,z,rshared").unwrap();
        let bind = v.bind.unwrap();
        assert!(!v.read_only);
        assert_eq!(
            (bind.selinux.as_deref(), bind.propagation.as_deref()),
            (Some("z"), Some("rshared"))
        );
        assert!(
            parse_volume("data:/x:nocopy")
                .unwrap()
                .volume
                .unwrap()
                .nocopy
        );
    }

    #[test]
    fn a_lone_target_is_an_anonymous_volume() {
        let v = parse_volume("/only/target").unwrap();
        assert_eq!(
            (v.kind, v.source, v.target.as_str()),
            (MountType::Volume, None, "/only/target")
        );
    }

    #[test]
    fn windows_drive_letters_are_not_separators() {
        let v = parse_volume("C:\\data:/data").unwrap();
        assert_eq!(
            (v.kind, v.source.as_deref()),
            (MountType::Bind, Some("C:\\data"))
        );
    }

    #[test]
    fn invalid_short_volumes_say_what_is_wrong() {
        let err = |s: &str| parse_volume(s).unwrap_err().to_string();
        assert_eq!(
            err("a:/b:ro:extra"),
            r#"invalid volume "a:/b:ro:extra": too many colons"#
        );
        assert_eq!(
            err("a:/b:bogus"),
            r#"invalid volume "a:/b:bogus": unknown option "bogus""#
        );
        assert_eq!(
            err("data:/x:z"),
            r#"invalid volume "data:/x:z": option "z" only applies to bind mounts"#
        );
        assert_eq!(
            err("data:"),
            r#"invalid volume "data:": missing container path"#
        );
    }

    #[test]
    fn the_long_form_reads_every_option() {
        let v = to_service_volume(json!({
            "type": "tmpfs", "target": "/t", "read_only": "true",
            "tmpfs": {"size": "64m", "mode": "1777"}
        }))
        .unwrap();
        let tmpfs = v.tmpfs.unwrap();
        assert_eq!(
            (tmpfs.size, tmpfs.mode),
            (Some(ByteSize(64 << 20)), Some(0o1777))
        );
        assert!(v.read_only);
        let img = to_service_volume(json!({"type": "image", "source": "alpine", "target": "/i", "image": {"subpath": "etc"}})).unwrap();
        assert_eq!(img.image.unwrap().subpath.as_deref(), Some("etc"));
    }
}
