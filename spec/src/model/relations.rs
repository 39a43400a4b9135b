//! How a service refers to other things: `depends_on`, `networks`, `models`,
//! `secrets`/`configs`, `extends` and `provider`.
//!
//! Invariant: list forms are stored as maps (or long-form entries) with Compose's
//! defaults filled in, so later stages see one shape only.

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::borrow::Cow;

use super::flex::{self, BoolOrString, Extensions, NumberOrString, ScalarMap};

/// When a dependency counts as ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DependencyCondition {
    /// The dependency's container has started.
    #[default]
    ServiceStarted,
    /// The dependency reports healthy.
    ServiceHealthy,
    /// The dependency ran to completion with exit code 0.
    ServiceCompletedSuccessfully,
}

/// One entry of `depends_on`, in long form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct DependsOn {
    /// Readiness condition.
    #[serde(default)]
    pub condition: DependencyCondition,
    /// Restart this service when the dependency is restarted.
    #[serde(
        default,
        deserialize_with = "flex::bool_",
        skip_serializing_if = "std::ops::Not::not"
    )]
    #[schemars(with = "BoolOrString")]
    pub restart: bool,
    /// Fail when the dependency is missing (otherwise only warn).
    #[serde(default = "yes", deserialize_with = "flex::bool_true")]
    #[schemars(with = "BoolOrString")]
    pub required: bool,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

fn yes() -> bool {
    true
}

impl Default for DependsOn {
    fn default() -> Self {
        Self {
            condition: DependencyCondition::default(),
            restart: false,
            required: true,
            extensions: Extensions::new(),
        }
    }
}

/// Reads `depends_on` (list of names or map).
pub(crate) fn depends_on<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<IndexMap<String, DependsOn>, D::Error> {
    flex::via(d, |v| flex::to_list_or_named_map(v, DependsOn::default))
}

/// How a service is attached to one network.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct ServiceNetwork {
    /// Extra DNS names of the service on this network.
    #[serde(
        deserialize_with = "flex::string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub aliases: Vec<String>,
    /// Name of the interface inside the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface_name: Option<String>,
    /// Static IPv4 address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    /// Static IPv6 address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    /// Link-local addresses.
    #[serde(
        deserialize_with = "flex::string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub link_local_ips: Vec<String>,
    /// MAC address on this network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// Driver options of the endpoint.
    #[serde(
        deserialize_with = "flex::scalar_map",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ScalarMap")]
    pub driver_opts: IndexMap<String, String>,
    /// Connection order priority.
    #[serde(
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<NumberOrString>")]
    pub priority: Option<i64>,
    /// Which network provides the default gateway.
    #[serde(
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<NumberOrString>")]
    pub gw_priority: Option<i64>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// Reads a service's `networks` (list of names or map; `null` means defaults).
pub(crate) fn service_networks<'de, D>(
    d: D,
) -> Result<IndexMap<String, Option<ServiceNetwork>>, D::Error>
where
    D: Deserializer<'de>,
{
    flex::via(d, |v| flex::to_list_or_named_map(v, || None))
}

/// How a service uses one model of the top-level `models`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct ServiceModel {
    /// Variable that receives the model's endpoint URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_var: Option<String>,
    /// Variable that receives the model's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_var: Option<String>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// Reads a service's `models` (list of names or map).
pub(crate) fn service_models<'de, D>(
    d: D,
) -> Result<IndexMap<String, Option<ServiceModel>>, D::Error>
where
    D: Deserializer<'de>,
{
    flex::via(d, |v| flex::to_list_or_named_map(v, || None))
}

/// A secret or config granted to a service, in long form.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct FileReference {
    /// Name of the top-level secret or config.
    pub source: String,
    /// Path or name inside the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Owner user id.
    #[serde(
        deserialize_with = "flex::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub uid: Option<String>,
    /// Owner group id.
    #[serde(
        deserialize_with = "flex::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub gid: Option<String>,
    /// File mode (`0440` in YAML, `"0440"` as text, or its decimal value).
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

/// Reads one `secrets`/`configs` item: a name or the long form.
fn to_file_reference(v: Value) -> Result<FileReference, String> {
    match v {
        Value::String(source) => Ok(FileReference {
            source,
            ..FileReference::default()
        }),
        v => flex::long_form(v),
    }
}

/// Reads a service's `secrets` or `configs`.
pub(crate) fn file_references<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<FileReference>, D::Error> {
    flex::via(d, |v| match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.into_iter().map(to_file_reference).collect(),
        other => Err(format!("expected a list, found {}", flex::kind(&other))),
    })
}

/// The service this one extends.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Extends {
    /// Name of the base service.
    pub service: String,
    /// File defining the base service; this file when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// Reads `extends`: a service name or `{service, file}`.
pub(crate) fn extends<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Extends>, D::Error> {
    flex::via(d, |v| {
        flex::nullable(v, |v| match v {
            Value::String(service) => Ok(Extends {
                service,
                file: None,
            }),
            v => flex::long_form(v),
        })
    })
}

/// A service managed by an external provider rather than by containers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct Provider {
    /// Provider component (`model`, a plugin name, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Provider options; every value is a list of texts.
    #[serde(
        default,
        deserialize_with = "provider_options",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ProviderOptionsSchema")]
    pub options: IndexMap<String, Vec<String>>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// Reads provider options, each a scalar or a list of scalars.
fn provider_options<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<IndexMap<String, Vec<String>>, D::Error> {
    flex::via(d, |v| match v {
        Value::Null => Ok(IndexMap::new()),
        Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| match v {
                Value::Array(_) => flex::to_string_list(v).map(|l| (k, l)),
                v => flex::scalar_text(&v).map(|s| (k, vec![s])),
            })
            .collect(),
        other => Err(format!("expected a mapping, found {}", flex::kind(&other))),
    })
}

/// Schema of provider options.
struct ProviderOptionsSchema;

impl JsonSchema for ProviderOptionsSchema {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "ProviderOptions".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let scalar = json_schema!({"type": ["string", "number", "boolean"]});
        json_schema!({"type": "object", "patternProperties": {"^.+$": {"oneOf": [scalar, {"type": "array", "items": scalar}]}}})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    struct Holder {
        #[serde(default, deserialize_with = "depends_on")]
        depends_on: IndexMap<String, DependsOn>,
        #[serde(default, deserialize_with = "service_networks")]
        networks: IndexMap<String, Option<ServiceNetwork>>,
        #[serde(default, deserialize_with = "file_references")]
        secrets: Vec<FileReference>,
        #[serde(default, deserialize_with = "extends")]
        extends: Option<Extends>,
    }

    fn holder(v: Value) -> Holder {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn depends_on_lists_become_maps_with_defaults() {
        let h = holder(json!({"depends_on": ["db"]}));
        assert_eq!(h.depends_on["db"], DependsOn::default());
        assert!(h.depends_on["db"].required);
        let h = holder(
            json!({"depends_on": {"db": {"condition": "service_healthy", "restart": "true"}}}),
        );
        assert_eq!(
            h.depends_on["db"].condition,
            DependencyCondition::ServiceHealthy
        );
        assert!(h.depends_on["db"].restart && h.depends_on["db"].required);
    }

    #[test]
    fn service_networks_accept_lists_maps_and_nulls() {
        let h = holder(json!({"networks": ["front"]}));
        assert_eq!(h.networks["front"], None);
        let h = holder(
            json!({"networks": {"back": null, "front": {"aliases": ["web"], "priority": "5"}}}),
        );
        assert_eq!(h.networks["back"], None);
        let front = h.networks["front"].clone().unwrap();
        assert_eq!(
            (front.aliases, front.priority),
            (vec!["web".to_string()], Some(5))
        );
    }

    #[test]
    fn secrets_accept_names_and_long_forms_with_octal_modes() {
        let h = holder(
            json!({"secrets": ["a", {"source": "b", "mode": "0440", "uid": 1000}, {"source": "c", "mode": 288}]}),
        );
        assert_eq!(h.secrets[0].source, "a");
        assert_eq!(
            (h.secrets[1].mode, h.secrets[1].uid.as_deref()),
            (Some(0o440), Some("1000"))
        );
        assert_eq!(h.secrets[2].mode, Some(0o440));
    }

    #[test]
    fn extends_accepts_a_name_or_a_service_and_file() {
        assert_eq!(
            holder(json!({"extends": "base"})).extends.unwrap().service,
            "base"
        );
        let e = holder(json!({"extends": {"service": "b", "file": "common.yml"}}))
            .extends
            .unwrap();
        assert_eq!(e.file.as_deref(), Some("common.yml"));
    }

    #[test]
    fn provider_options_become_lists_of_text() {
        let p: Provider =
            serde_json::from_value(json!({"type": "model", "options": {"a": 1, "b": ["x", true]}}))
                .unwrap();
        assert_eq!(p.options["a"], ["1"]);
        assert_eq!(p.options["b"], ["x", "true"]);
    }
}
