//! Host-facing service settings: `ulimits`, `devices`, `blkio_config`, `logging`,
//! `credential_spec`, `env_file` and `extra_hosts`.
//!
//! Invariant: short forms are expanded (`nofile: 1024` → soft = hard = 1024, a
//! device string → source/target/permissions, an env file path → `required: true`).

use std::borrow::Cow;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::bytes::ByteSize;
use super::flex::{self, BoolOrString, Extensions, IntOrString};

/// Soft and hard limit of one resource (`ulimits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ulimit {
    /// Soft limit.
    #[serde(deserialize_with = "int")]
    #[schemars(with = "IntOrString")]
    pub soft: i64,
    /// Hard limit.
    #[serde(deserialize_with = "int")]
    #[schemars(with = "IntOrString")]
    pub hard: i64,
}

/// A lenient integer.
fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    flex::via(d, flex::to_i64)
}

/// Reads one ulimit: a single value or `{soft, hard}`.
fn to_ulimit(v: Value) -> Result<Ulimit, String> {
    match v {
        v @ Value::Object(_) => flex::long_form(v),
        v => flex::to_i64(v).map(|n| Ulimit { soft: n, hard: n }),
    }
}

/// Reads `ulimits`.
pub(crate) fn ulimits<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<IndexMap<String, Ulimit>, D::Error> {
    flex::via(d, |v| match v {
        Value::Null => Ok(IndexMap::new()),
        Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| {
                to_ulimit(v)
                    .map(|u| (k.clone(), u))
                    .map_err(|e| format!("ulimit {k}: {e}"))
            })
            .collect(),
        other => Err(format!(
            "expected a mapping of ulimits, found {}",
            flex::kind(&other)
        )),
    })
}

/// Schema of `ulimits`.
pub(crate) struct UlimitsSchema;

impl JsonSchema for UlimitsSchema {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Ulimits".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let long = generator.subschema_for::<Ulimit>();
        json_schema!({"type": "object", "patternProperties": {"^[a-z]+$": {"oneOf": [{"type": ["integer", "string"]}, long]}}, "additionalProperties": false})
    }
}

/// A host device made available in the container.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct Device {
    /// Device path on the host.
    pub source: String,
    /// Device path in the container.
    #[serde(default)]
    pub target: String,
    /// Cgroup permissions (`rwm`).
    #[serde(default)]
    pub permissions: String,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// Parses `SOURCE[:TARGET][:PERMISSIONS]`.
pub fn parse_device(spec: &str) -> Result<Device, String> {
    let is_perms = |s: &str| !s.is_empty() && s.chars().all(|c| matches!(c, 'r' | 'w' | 'm'));
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, permissions) = match parts[..] {
        [src] => (src, src, "rwm"),
        [src, perms] if is_perms(perms) => (src, src, perms),
        [src, dst] => (src, dst, "rwm"),
        [src, dst, perms] if is_perms(perms) => (src, dst, perms),
        _ => {
            return Err(format!(
                "invalid device {spec:?}: expected SOURCE[:TARGET][:PERMISSIONS]"
            ));
        }
    };
    if source.is_empty() {
        return Err(format!("invalid device {spec:?}: missing source path"));
    }
    let device = Device {
        source: source.into(),
        target: target.into(),
        permissions: permissions.into(),
        ..Device::default()
    };
    Ok(device)
}

/// Reads `devices`.
pub(crate) fn devices<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Device>, D::Error> {
    flex::via(d, |v| match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.into_iter().map(to_device).collect(),
        other => Err(format!(
            "expected a list of devices, found {}",
            flex::kind(&other)
        )),
    })
}

/// Reads one device and fills long-form defaults (target = source, `rwm`).
fn to_device(v: Value) -> Result<Device, String> {
    let Value::String(spec) = v else {
        let mut device: Device = flex::long_form(v)?;
        if device.target.is_empty() {
            device.target.clone_from(&device.source);
        }
        if device.permissions.is_empty() {
            device.permissions = "rwm".into();
        }
        return Ok(device);
    };
    parse_device(&spec)
}

/// Block IO limits.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BlkioConfig {
    /// Read rate limits in bytes per second.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_read_bps: Vec<ThrottleDevice>,
    /// Read rate limits in operations per second.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_read_iops: Vec<ThrottleDevice>,
    /// Write rate limits in bytes per second.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_write_bps: Vec<ThrottleDevice>,
    /// Write rate limits in operations per second.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_write_iops: Vec<ThrottleDevice>,
    /// Default IO weight (10–1000).
    #[serde(
        deserialize_with = "flex::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<IntOrString>")]
    pub weight: Option<u64>,
    /// IO weight per device.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub weight_device: Vec<WeightDevice>,
}

/// A rate limit on one device (bytes, or operations for the `iops` lists).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleDevice {
    /// Device path.
    pub path: String,
    /// Limit per second.
    pub rate: ByteSize,
}

/// An IO weight on one device.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct WeightDevice {
    /// Device path.
    pub path: String,
    /// Relative weight.
    #[serde(deserialize_with = "uint")]
    #[schemars(with = "IntOrString")]
    pub weight: u64,
}

/// A lenient unsigned integer.
fn uint<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    flex::via(d, flex::to_u64)
}

/// Logging driver and its options.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct Logging {
    /// Driver name (`json-file`, `journald`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Driver options; numbers are kept as text.
    #[serde(
        deserialize_with = "flex::list_or_dict",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "LogOptionsSchema")]
    pub options: IndexMap<String, Option<String>>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// Schema of logging options.
struct LogOptionsSchema;

impl JsonSchema for LogOptionsSchema {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "LogOptions".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "object", "patternProperties": {"^.+$": {"type": ["string", "number", "null"]}}})
    }
}

/// Windows credential spec of a managed service account.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct CredentialSpec {
    /// Name of a config holding the spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// Path of a spec file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Registry path of the spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// A file of environment variables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvFile {
    /// Path of the file.
    pub path: String,
    /// Fail when the file is missing.
    #[serde(default = "yes", deserialize_with = "flex::bool_true")]
    #[schemars(with = "BoolOrString")]
    pub required: bool,
    /// File format (`raw`, or dotenv by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

fn yes() -> bool {
    true
}

impl EnvFile {
    /// A required dotenv file at `path`.
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            required: true,
            format: None,
        }
    }
}

/// Reads `env_file`: a path, or a list of paths and long forms.
pub(crate) fn env_files<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EnvFile>, D::Error> {
    flex::via(d, |v| match v {
        Value::Null => Ok(Vec::new()),
        Value::String(path) => Ok(vec![EnvFile::new(path)]),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(path) => Ok(EnvFile::new(path)),
                item => flex::long_form(item),
            })
            .collect(),
        other => Err(format!(
            "expected a path or a list of env files, found {}",
            flex::kind(&other)
        )),
    })
}

/// Schema of `env_file`.
pub(crate) struct EnvFilesSchema;

impl JsonSchema for EnvFilesSchema {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "EnvFiles".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let long = generator.subschema_for::<EnvFile>();
        json_schema!({"oneOf": [{"type": "string"}, {"type": "array", "items": {"oneOf": [{"type": "string"}, long]}}]})
    }
}

/// Reads `extra_hosts`: `["host:ip", "host=ip"]` or `{host: ip | [ip, …]}`.
pub(crate) fn extra_hosts<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<IndexMap<String, Vec<String>>, D::Error> {
    flex::via(d, to_extra_hosts)
}

/// Converts either form of `extra_hosts` to host → addresses.
fn to_extra_hosts(v: Value) -> Result<IndexMap<String, Vec<String>>, String> {
    let mut hosts: IndexMap<String, Vec<String>> = IndexMap::new();
    match v {
        Value::Null => {}
        Value::Array(items) => {
            for item in items {
                let entry = flex::scalar_text(&item)?;
                let (host, ip) = entry
                    .split_once('=')
                    .or_else(|| entry.split_once(':'))
                    .ok_or_else(|| {
                        format!("invalid extra host {entry:?}: expected HOST=IP or HOST:IP")
                    })?;
                hosts
                    .entry(host.to_string())
                    .or_default()
                    .push(ip.to_string());
            }
        }
        Value::Object(map) => {
            for (host, ips) in map {
                hosts.insert(host, flex::to_string_or_list(ips)?);
            }
        }
        other => {
            return Err(format!(
                "expected a list or a mapping of hosts, found {}",
                flex::kind(&other)
            ));
        }
    }
    Ok(hosts)
}

/// Schema of `extra_hosts`.
pub(crate) struct ExtraHostsSchema;

impl JsonSchema for ExtraHostsSchema {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "ExtraHosts".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let list = json_schema!({"type": "array", "items": {"type": "string"}});
        json_schema!({"oneOf": [
            {"type": "object", "patternProperties": {".+": {"oneOf": [{"type": "string"}, list]}}, "additionalProperties": false},
            list
        ]})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_single_ulimit_sets_soft_and_hard() {
        assert_eq!(
            to_ulimit(json!(1024)),
            Ok(Ulimit {
                soft: 1024,
                hard: 1024
            })
        );
        assert_eq!(
            to_ulimit(json!({"soft": "10", "hard": 20})),
            Ok(Ulimit { soft: 10, hard: 20 })
        );
    }

    #[test]
    fn device_strings_expand_to_source_target_and_permissions() {
        let d = parse_device("/dev/sda:/dev/xvda:r").unwrap();
        assert_eq!(
            (d.source.as_str(), d.target.as_str(), d.permissions.as_str()),
            ("/dev/sda", "/dev/xvda", "r")
        );
        let d = parse_device("/dev/fuse").unwrap();
        assert_eq!(
            (d.target.as_str(), d.permissions.as_str()),
            ("/dev/fuse", "rwm")
        );
        assert_eq!(parse_device("/dev/fuse:rw").unwrap().permissions, "rw");
        assert!(
            parse_device("a:b:c:d")
                .unwrap_err()
                .contains("expected SOURCE")
        );
    }

    #[test]
    fn env_files_accept_paths_and_long_forms() {
        #[derive(Deserialize)]
        struct H {
            #[serde(deserialize_with = "env_files")]
            env_file: Vec<EnvFile>,
        }
        let h: H = serde_json::from_value(json!({"env_file": ".env"})).unwrap();
        assert_eq!(h.env_file, [EnvFile::new(".env")]);
        let h: H = serde_json::from_value(
            json!({"env_file": ["a", {"path": "b", "required": false, "format": "raw"}]}),
        )
        .unwrap();
        assert!(!h.env_file[1].required);
        assert_eq!(h.env_file[1].format.as_deref(), Some("raw"));
    }

    #[test]
    fn extra_hosts_accept_both_separators_and_maps() {
        let hosts = to_extra_hosts(json!(["a=1.2.3.4", "b:::1", "a:5.6.7.8"])).unwrap();
        assert_eq!(hosts["a"], ["1.2.3.4", "5.6.7.8"]);
        assert_eq!(hosts["b"], ["::1"]);
        let hosts = to_extra_hosts(json!({"c": "1.1.1.1", "d": ["2.2.2.2", "::2"]})).unwrap();
        assert_eq!(hosts["d"], ["2.2.2.2", "::2"]);
    }
}
