//! Top-level resources of a stack: `networks`, `volumes`, `configs`, `secrets`,
//! `models` and `include`.
//!
//! Invariant: `external` is a plain flag; the deprecated `external: {name: x}`
//! form moves `x` into `name` (see `resource_map`), as Compose does.

use std::borrow::Cow;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::flex::{self, BoolOrString, Extensions, ListOrDict, ScalarMap, StringOrList};

/// Schema of `external`: a flag, or the deprecated `{name}` form.
struct ExternalSchema;

impl JsonSchema for ExternalSchema {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "External".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": ["boolean", "string", "object"],
            "properties": {"name": {"type": "string", "deprecated": true}},
            "additionalProperties": false,
            "patternProperties": {"^x-": {}}
        })
    }
}

/// Reads the `external` flag: a boolean, a boolean string, or `{name}` (true).
fn external_flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    flex::via(d, |v| match v {
        Value::Null => Ok(false),
        Value::Object(_) => Ok(true),
        v => flex::to_bool(v),
    })
}

/// Moves the deprecated `external: {name: x}` into `name: x`, as Compose does.
fn lift_external_name(entry: &mut Value) {
    let Some(map) = entry.as_object_mut() else {
        return;
    };
    let legacy = map
        .get_mut("external")
        .and_then(Value::as_object_mut)
        .and_then(|e| e.remove("name"));
    if let Some(name) = legacy {
        map.entry("name").or_insert(name);
    }
}

/// Reads a map of top-level resources: null entries are defaults, legacy
/// external names are lifted.
pub(crate) fn resource_map<'de, D, T>(d: D) -> Result<IndexMap<String, T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned + Default,
{
    flex::via(d, |mut v| {
        if let Some(map) = v.as_object_mut() {
            map.values_mut().for_each(lift_external_name);
        }
        flex::to_named_map(v)
    })
}

/// A top-level network.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct Network {
    /// Name on the host, instead of `<project>_<key>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Network driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Driver options.
    #[serde(
        deserialize_with = "flex::scalar_map",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ScalarMap")]
    pub driver_opts: IndexMap<String, String>,
    /// Address management.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Ipam>,
    /// Created outside the stack; never created or removed by us.
    #[serde(
        deserialize_with = "external_flag",
        skip_serializing_if = "std::ops::Not::not"
    )]
    #[schemars(with = "ExternalSchema")]
    pub external: bool,
    /// No outside connectivity.
    #[serde(
        deserialize_with = "flex::bool_",
        skip_serializing_if = "std::ops::Not::not"
    )]
    #[schemars(with = "BoolOrString")]
    pub internal: bool,
    /// Enable IPv4 addressing.
    #[serde(
        deserialize_with = "flex::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<BoolOrString>")]
    pub enable_ipv4: Option<bool>,
    /// Enable IPv6 addressing.
    #[serde(
        deserialize_with = "flex::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<BoolOrString>")]
    pub enable_ipv6: Option<bool>,
    /// Standalone containers may attach.
    #[serde(
        deserialize_with = "flex::bool_",
        skip_serializing_if = "std::ops::Not::not"
    )]
    #[schemars(with = "BoolOrString")]
    pub attachable: bool,
    /// Labels.
    #[serde(
        deserialize_with = "flex::list_or_dict",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ListOrDict")]
    pub labels: IndexMap<String, Option<String>>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// IP address management of a network.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct Ipam {
    /// IPAM driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Address pools.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IpamPool>,
    /// Driver options.
    #[serde(
        deserialize_with = "flex::scalar_map",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ScalarMap")]
    pub options: IndexMap<String, String>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// One address pool.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct IpamPool {
    /// Subnet in CIDR form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// Range addresses are allocated from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    /// Gateway address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Addresses reserved for other hosts, by name.
    #[serde(
        deserialize_with = "flex::scalar_map",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ScalarMap")]
    pub aux_addresses: IndexMap<String, String>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// A top-level volume.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct Volume {
    /// Name on the host, instead of `<project>_<key>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Volume driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Driver options.
    #[serde(
        deserialize_with = "flex::scalar_map",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ScalarMap")]
    pub driver_opts: IndexMap<String, String>,
    /// Created outside the stack.
    #[serde(
        deserialize_with = "external_flag",
        skip_serializing_if = "std::ops::Not::not"
    )]
    #[schemars(with = "ExternalSchema")]
    pub external: bool,
    /// Labels.
    #[serde(
        deserialize_with = "flex::list_or_dict",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ListOrDict")]
    pub labels: IndexMap<String, Option<String>>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// A top-level secret.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct Secret {
    /// Name on the platform.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Environment variable holding the content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// File holding the content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Created outside the stack.
    #[serde(
        deserialize_with = "external_flag",
        skip_serializing_if = "std::ops::Not::not"
    )]
    #[schemars(with = "ExternalSchema")]
    pub external: bool,
    /// Labels.
    #[serde(
        deserialize_with = "flex::list_or_dict",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ListOrDict")]
    pub labels: IndexMap<String, Option<String>>,
    /// Secret driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Driver options.
    #[serde(
        deserialize_with = "flex::scalar_map",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ScalarMap")]
    pub driver_opts: IndexMap<String, String>,
    /// Template driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_driver: Option<String>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// A top-level config.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct Config {
    /// Name on the platform.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Inline content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Environment variable holding the content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// File holding the content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Created outside the stack.
    #[serde(
        deserialize_with = "external_flag",
        skip_serializing_if = "std::ops::Not::not"
    )]
    #[schemars(with = "ExternalSchema")]
    pub external: bool,
    /// Labels.
    #[serde(
        deserialize_with = "flex::list_or_dict",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ListOrDict")]
    pub labels: IndexMap<String, Option<String>>,
    /// Template driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_driver: Option<String>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// A top-level AI model.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}, "required" = ["model"]))]
pub struct Model {
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Model reference.
    pub model: String,
    /// Context window size in tokens.
    #[serde(
        deserialize_with = "flex::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub context_size: Option<u64>,
    /// Runtime flags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runtime_flags: Vec<String>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// Another stack included in this one.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Include {
    /// Stack files of the included project.
    #[serde(
        deserialize_with = "flex::string_or_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "StringOrList")]
    pub path: Vec<String>,
    /// Env files of the included project.
    #[serde(
        deserialize_with = "flex::string_or_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "StringOrList")]
    pub env_file: Vec<String>,
    /// Project directory of the included project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_directory: Option<String>,
}

/// Reads `include`: each item a path or the long form.
pub(crate) fn includes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Include>, D::Error> {
    flex::via(d, |v| match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(path) => Ok(Include {
                    path: vec![path],
                    ..Include::default()
                }),
                item => flex::long_form(item),
            })
            .collect(),
        other => Err(format!(
            "expected a list of includes, found {}",
            flex::kind(&other)
        )),
    })
}
