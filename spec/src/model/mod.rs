//! The typed model of a stack file (the Compose Specification).
//!
//! Deserialization accepts every short and long syntax Compose accepts and stores
//! the normalized long form; serialization prints it the way
//! `docker compose config --format json` does, and serialize → deserialize is the
//! identity. Unknown keys are not rejected here (flattened `x-*` extensions rule
//! out `deny_unknown_fields`): the loader validates documents against
//! [`stack_file_schema`], generated from these types, first.

mod build;
mod bytes;
mod deploy;
mod duration;
mod flex;
mod health;
mod host;
mod ports;
mod relations;
mod resources;
mod service;
mod volumes;

#[cfg(test)]
mod tests;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};

pub use build::Build;
pub use bytes::{ByteSize, ByteSizeError};
pub use deploy::{
    Deploy, DeviceRequest, DiscreteResource, GenericResource, Placement, PlacementPreference,
    ResourceLimits, ResourceReservations, Resources, RestartPolicy, UpdateConfig,
};
pub use duration::{Duration, DurationError};
pub use flex::{Extensions, shell_split};
pub use health::{Develop, Healthcheck, ServiceHook, WatchRule};
pub use host::{
    BlkioConfig, CredentialSpec, Device, EnvFile, Logging, ThrottleDevice, Ulimit, WeightDevice,
    parse_device,
};
pub use ports::{PortError, PortMapping, parse_port};
pub use relations::{
    DependencyCondition, DependsOn, Extends, FileReference, Provider, ServiceModel, ServiceNetwork,
};
pub use resources::{Config, Include, Ipam, IpamPool, Model, Network, Secret, Volume};
pub use service::Service;
pub use volumes::{
    BindOptions, ImageOptions, MountType, ServiceVolume, TmpfsOptions, VolumeError, VolumeOptions,
    is_host_path, parse_volume,
};

use flex::{NamedMap, ShortOrLong};

/// A whole stack: the top level of a (merged) stack file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
#[schemars(transform = add_obsolete_version)]
pub struct Project {
    /// Project name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Other stacks included in this one.
    #[serde(
        deserialize_with = "resources::includes",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "Vec<ShortOrLong<Include>>")]
    pub include: Vec<Include>,
    /// Services, by name.
    #[schemars(with = "NamedMap<Service, false>")]
    pub services: IndexMap<String, Service>,
    /// Networks, by key.
    #[serde(
        deserialize_with = "resources::resource_map",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "NamedMap<Network, true>")]
    pub networks: IndexMap<String, Network>,
    /// Named volumes, by key.
    #[serde(
        deserialize_with = "resources::resource_map",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "NamedMap<Volume, true>")]
    pub volumes: IndexMap<String, Volume>,
    /// Secrets, by key.
    #[serde(
        deserialize_with = "resources::resource_map",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "NamedMap<Secret, true>")]
    pub secrets: IndexMap<String, Secret>,
    /// Configs, by key.
    #[serde(
        deserialize_with = "resources::resource_map",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "NamedMap<Config, true>")]
    pub configs: IndexMap<String, Config>,
    /// AI models, by key.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(with = "NamedMap<Model, false>")]
    pub models: IndexMap<String, Model>,
    /// `x-*` extension fields (the obsolete `version` is dropped).
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// Lets the obsolete top-level `version` through validation (it is then ignored).
fn add_obsolete_version(schema: &mut Schema) {
    let version = serde_json::json!({"type": "string", "deprecated": true, "description": "obsolete, ignored"});
    if let Some(props) = schema
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut)
    {
        props.insert("version".to_string(), version);
    }
}

/// The JSON Schema (draft-07) of a stack file, generated from [`Project`].
pub fn stack_file_schema() -> Schema {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let mut schema = generator.into_root_schema_for::<Project>();
    schema.insert("title".to_string(), "rcompose stack file".into());
    schema
}
