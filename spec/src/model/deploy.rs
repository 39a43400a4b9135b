//! Deployment settings (`deploy`) and device requests (`gpus`, reservations).
//!
//! Invariant: `gpus: all` is stored as one device request with `count: -1`, the
//! value Compose uses for "all devices".

use std::borrow::Cow;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::bytes::ByteSize;
use super::duration::Duration;
use super::flex::{self, Extensions, IntOrString, ListOrDict, NumberOrString};

/// Deployment settings of a service.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct Deploy {
    /// `replicated` (default) or `global`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// `vip` or `dnsrr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_mode: Option<String>,
    /// Number of replicas.
    #[serde(
        deserialize_with = "flex::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<IntOrString>")]
    pub replicas: Option<u64>,
    /// Labels of the service (not of its containers).
    #[serde(
        deserialize_with = "flex::list_or_dict",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ListOrDict")]
    pub labels: IndexMap<String, Option<String>>,
    /// How a failed update is rolled back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_config: Option<UpdateConfig>,
    /// How the service is updated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_config: Option<UpdateConfig>,
    /// Resource limits and reservations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Restart policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
    /// Placement constraints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// Rolling update (or rollback) settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct UpdateConfig {
    /// Containers updated at once.
    #[serde(
        deserialize_with = "flex::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<IntOrString>")]
    pub parallelism: Option<u64>,
    /// Wait between batches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
    /// `continue`, `rollback` or `pause`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_action: Option<String>,
    /// How long to watch each task for failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor: Option<Duration>,
    /// Tolerated failure ratio.
    #[serde(
        deserialize_with = "flex::opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<NumberOrString>")]
    pub max_failure_ratio: Option<f64>,
    /// `stop-first` or `start-first`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["start-first", "stop-first"]))]
    pub order: Option<String>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// Resource limits and reservations.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct Resources {
    /// Upper bounds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceLimits>,
    /// Guaranteed amounts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservations: Option<ResourceReservations>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// Upper bounds on resources.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct ResourceLimits {
    /// CPUs (fractional).
    #[serde(
        deserialize_with = "flex::opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<NumberOrString>")]
    pub cpus: Option<f64>,
    /// Memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
    /// Process count.
    #[serde(
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<IntOrString>")]
    pub pids: Option<i64>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// Guaranteed resources.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct ResourceReservations {
    /// CPUs (fractional).
    #[serde(
        deserialize_with = "flex::opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<NumberOrString>")]
    pub cpus: Option<f64>,
    /// Memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
    /// Generic (Swarm) resources.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub generic_resources: Vec<GenericResource>,
    /// Devices such as GPUs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceRequest>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// A generic (Swarm) resource.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct GenericResource {
    /// A counted resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discrete_resource_spec: Option<DiscreteResource>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// A counted generic resource.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct DiscreteResource {
    /// Resource kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Amount.
    #[serde(
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<NumberOrString>")]
    pub value: Option<i64>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// A request for host devices (GPUs and the like).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct DeviceRequest {
    /// Required capabilities (`gpu`, `compute`, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Number of devices; `-1` means all.
    #[serde(
        deserialize_with = "device_count",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<IntOrString>")]
    pub count: Option<i64>,
    /// Specific device ids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_ids: Vec<String>,
    /// Device driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Driver options.
    #[serde(
        deserialize_with = "flex::list_or_dict",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ListOrDict")]
    pub options: IndexMap<String, Option<String>>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// Reads a device count: a number, a numeric string or `all` (-1).
fn device_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    flex::via(d, |v| {
        flex::nullable(v, |v| match v.as_str() {
            Some("all") => Ok(-1),
            _ => flex::to_i64(v),
        })
    })
}

/// Reads `gpus`: `all` or a list of device requests.
pub(crate) fn gpus<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DeviceRequest>, D::Error> {
    flex::via(d, |v| match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) if s == "all" => Ok(vec![DeviceRequest {
            count: Some(-1),
            ..DeviceRequest::default()
        }]),
        v @ Value::Array(_) => flex::long_form(v),
        other => Err(format!(
            "expected \"all\" or a list of device requests, found {}",
            flex::kind(&other)
        )),
    })
}

/// Schema of `gpus`.
pub(crate) struct GpusSchema;

impl JsonSchema for GpusSchema {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Gpus".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let request = generator.subschema_for::<DeviceRequest>();
        json_schema!({"oneOf": [{"type": "string", "enum": ["all"]}, {"type": "array", "items": request}]})
    }
}

/// When and how often containers are restarted (Swarm style).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct RestartPolicy {
    /// `none`, `on-failure` or `any`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Wait between restarts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
    /// Restarts before giving up.
    #[serde(
        deserialize_with = "flex::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<IntOrString>")]
    pub max_attempts: Option<u64>,
    /// Window over which restarts are counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Duration>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// Where replicas may run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct Placement {
    /// Node constraints.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<String>,
    /// Spread preferences.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub preferences: Vec<PlacementPreference>,
    /// Replicas per node.
    #[serde(
        deserialize_with = "flex::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<IntOrString>")]
    pub max_replicas_per_node: Option<u64>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// One spread preference.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct PlacementPreference {
    /// Node label to spread over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spread: Option<String>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quoted_numbers_are_accepted_in_deploy() {
        let input = json!({"replicas": "3", "resources": {"limits": {"cpus": "0.5", "memory": "512m", "pids": "100"}},
            "restart_policy": {"delay": "5s", "max_attempts": "2"}, "update_config": {"parallelism": 2, "order": "start-first"}});
        let d: Deploy = serde_json::from_value(input).unwrap();
        assert_eq!(d.replicas, Some(3));
        let limits = d.resources.unwrap().limits.unwrap();
        assert_eq!(
            (limits.cpus, limits.memory, limits.pids),
            (Some(0.5), Some(ByteSize(512 << 20)), Some(100))
        );
        assert_eq!(d.restart_policy.unwrap().max_attempts, Some(2));
    }

    #[test]
    fn gpus_all_is_one_request_for_every_device() {
        #[derive(Deserialize)]
        struct H {
            #[serde(deserialize_with = "gpus")]
            gpus: Vec<DeviceRequest>,
        }
        let h: H = serde_json::from_value(json!({"gpus": "all"})).unwrap();
        assert_eq!(h.gpus[0].count, Some(-1));
        let h: H = serde_json::from_value(
            json!({"gpus": [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]}),
        )
        .unwrap();
        assert_eq!(
            (h.gpus[0].count, h.gpus[0].driver.as_deref()),
            (Some(-1), Some("nvidia"))
        );
    }
}
