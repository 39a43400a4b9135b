//! Container lifecycle settings: `healthcheck`, lifecycle hooks (`post_start`,
//! `pre_stop`) and `develop.watch` rules.
//!
//! Invariant: a string health test is stored as `["CMD-SHELL", text]`, as Compose
//! does, and a hook's string command is split like a shell would.

use std::borrow::Cow;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::duration::Duration;
use super::flex::{
    self, BoolOrString, CommandSchema, Extensions, ListOrDict, NumberOrString, StringOrList,
};

/// How the health of a container is checked.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct Healthcheck {
    /// Test command: `["CMD", …]`, `["CMD-SHELL", text]` or `["NONE"]`.
    #[serde(
        deserialize_with = "health_test",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "StringOrList")]
    pub test: Vec<String>,
    /// Time allowed for one check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Time between checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Consecutive failures before unhealthy.
    #[serde(
        deserialize_with = "flex::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<NumberOrString>")]
    pub retries: Option<u64>,
    /// Grace period after start during which failures do not count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_period: Option<Duration>,
    /// Time between checks during the start period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<Duration>,
    /// Disable any healthcheck (including the image's).
    #[serde(
        deserialize_with = "flex::bool_",
        skip_serializing_if = "std::ops::Not::not"
    )]
    #[schemars(with = "BoolOrString")]
    pub disable: bool,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// Reads a health test: a shell string or an exec list.
fn health_test<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    flex::via(d, |v| match v {
        Value::String(s) => Ok(vec!["CMD-SHELL".to_string(), s]),
        other => flex::to_string_list(other),
    })
}

/// A command run in the container at a lifecycle event.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}, "required" = ["command"]))]
pub struct ServiceHook {
    /// Command to run.
    #[serde(deserialize_with = "hook_command")]
    #[schemars(with = "CommandSchema")]
    pub command: Vec<String>,
    /// User to run it as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Run it privileged.
    #[serde(
        deserialize_with = "flex::bool_",
        skip_serializing_if = "std::ops::Not::not"
    )]
    #[schemars(with = "BoolOrString")]
    pub privileged: bool,
    /// Working directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Extra environment.
    #[serde(
        deserialize_with = "flex::list_or_dict",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ListOrDict")]
    pub environment: IndexMap<String, Option<String>>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// Reads a hook command (null meaning none).
fn hook_command<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    flex::via(d, |v| flex::to_command(v).map(Option::unwrap_or_default))
}

/// Development settings (`develop`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct Develop {
    /// File watch rules of `rcompose watch`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<WatchRule>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// What to do when a watched path changes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}, "required" = ["path", "action"]))]
pub struct WatchRule {
    /// Host path to watch.
    pub path: String,
    /// `rebuild`, `sync`, `restart`, `sync+restart` or `sync+exec`.
    #[schemars(extend("enum" = ["rebuild", "sync", "restart", "sync+restart", "sync+exec"]))]
    pub action: String,
    /// Container path to sync into.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Patterns to ignore.
    #[serde(
        deserialize_with = "flex::string_or_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "StringOrList")]
    pub ignore: Vec<String>,
    /// Patterns to include.
    #[serde(
        deserialize_with = "flex::string_or_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "StringOrList")]
    pub include: Vec<String>,
    /// Command for `sync+exec`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec: Option<ServiceHook>,
    /// Sync everything once when watching starts.
    #[serde(
        deserialize_with = "flex::bool_",
        skip_serializing_if = "std::ops::Not::not"
    )]
    #[schemars(with = "BoolOrString")]
    pub initial_sync: bool,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// Schema of a list of hooks.
pub(crate) struct HooksSchema;

impl JsonSchema for HooksSchema {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Hooks".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let hook = generator.subschema_for::<ServiceHook>();
        json_schema!({"type": "array", "items": hook})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_string_health_test_runs_in_a_shell() {
        let h: Healthcheck = serde_json::from_value(
            json!({"test": "curl -f localhost", "interval": "1m30s", "retries": "3"}),
        )
        .unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "curl -f localhost"]);
        assert_eq!(h.interval.unwrap().to_string(), "1m30s");
        assert_eq!(h.retries, Some(3));
    }

    #[test]
    fn a_healthcheck_can_be_disabled() {
        let h: Healthcheck = serde_json::from_value(json!({"disable": true})).unwrap();
        assert!(h.disable);
        let list: Healthcheck = serde_json::from_value(json!({"test": ["CMD", "true"]})).unwrap();
        assert_eq!(list.test, ["CMD", "true"]);
    }

    #[test]
    fn hook_commands_are_split_like_a_shell() {
        let h: ServiceHook =
            serde_json::from_value(json!({"command": "echo 'a b'", "privileged": "true"})).unwrap();
        assert_eq!(h.command, ["echo", "a b"]);
        assert!(h.privileged);
    }

    #[test]
    fn watch_rules_read_string_or_list_patterns() {
        let d: Develop =
            serde_json::from_value(json!({"watch": [{"path": "./src", "action": "sync", "target": "/app", "ignore": "node_modules"}]}))
                .unwrap();
        assert_eq!(d.watch[0].ignore, ["node_modules"]);
    }
}
