//! How a service's image is built (`build`), short (`build: ./dir`) or long form.
//!
//! Invariant: the short form is stored as the long form with only `context` set;
//! paths are kept as written for the loader to resolve.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::bytes::ByteSize;
use super::flex::{self, BoolOrString, Extensions, ListOrDict};
use super::host::{ExtraHostsSchema, Ulimit, UlimitsSchema};
use super::relations::FileReference;

/// Build settings of a service image.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("additionalProperties" = false, "patternProperties" = {"^x-": {}}))]
pub struct Build {
    /// Build context: a directory or a URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Dockerfile path, relative to the context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// Inline Dockerfile content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile_inline: Option<String>,
    /// Extra privileges the build may use.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entitlements: Vec<String>,
    /// Build arguments.
    #[serde(
        deserialize_with = "flex::list_or_dict",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ListOrDict")]
    pub args: IndexMap<String, Option<String>>,
    /// SSH agent sockets or keys (`default`, `id=path`).
    #[serde(
        deserialize_with = "flex::list_or_dict",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ListOrDict")]
    pub ssh: IndexMap<String, Option<String>>,
    /// Labels of the built image.
    #[serde(
        deserialize_with = "flex::list_or_dict",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ListOrDict")]
    pub labels: IndexMap<String, Option<String>>,
    /// Cache sources.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache_from: Vec<String>,
    /// Cache destinations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache_to: Vec<String>,
    /// Build without cache.
    #[serde(
        deserialize_with = "flex::bool_",
        skip_serializing_if = "std::ops::Not::not"
    )]
    #[schemars(with = "BoolOrString")]
    pub no_cache: bool,
    /// Named extra contexts.
    #[serde(
        deserialize_with = "flex::list_or_dict",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ListOrDict")]
    pub additional_contexts: IndexMap<String, Option<String>>,
    /// Network used during `RUN`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Provenance attestation setting.
    #[serde(
        deserialize_with = "flex::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<BoolOrString>")]
    pub provenance: Option<String>,
    /// SBOM attestation setting.
    #[serde(
        deserialize_with = "flex::opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<BoolOrString>")]
    pub sbom: Option<String>,
    /// Always pull base images.
    #[serde(
        deserialize_with = "flex::bool_",
        skip_serializing_if = "std::ops::Not::not"
    )]
    #[schemars(with = "BoolOrString")]
    pub pull: bool,
    /// Dockerfile stage to build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Size of `/dev/shm` during the build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<ByteSize>,
    /// Extra `/etc/hosts` entries during the build.
    #[serde(
        deserialize_with = "super::host::extra_hosts",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "ExtraHostsSchema")]
    pub extra_hosts: IndexMap<String, Vec<String>>,
    /// Isolation technology.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    /// Build with elevated privileges.
    #[serde(
        deserialize_with = "flex::bool_",
        skip_serializing_if = "std::ops::Not::not"
    )]
    #[schemars(with = "BoolOrString")]
    pub privileged: bool,
    /// Secrets available to the build.
    #[serde(
        deserialize_with = "super::relations::file_references",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "flex::ShortOrLongList<FileReference>")]
    pub secrets: Vec<FileReference>,
    /// Extra tags of the built image.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Resource limits during the build.
    #[serde(
        deserialize_with = "super::host::ulimits",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    #[schemars(with = "UlimitsSchema")]
    pub ulimits: IndexMap<String, Ulimit>,
    /// Target platforms.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// `x-*` extension fields.
    #[serde(flatten, deserialize_with = "flex::extensions")]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// Reads `build`: a context path or the long form.
pub(crate) fn build<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Build>, D::Error> {
    flex::via(d, |v| {
        flex::nullable(v, |v| match v {
            Value::String(context) => Ok(Build {
                context: Some(context),
                ..Build::default()
            }),
            v => flex::long_form(v),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize)]
    struct H {
        #[serde(deserialize_with = "build")]
        build: Option<Build>,
    }

    #[test]
    fn a_build_string_is_the_context() {
        let h: H = serde_json::from_value(json!({"build": "./dir"})).unwrap();
        assert_eq!(h.build.unwrap().context.as_deref(), Some("./dir"));
    }

    #[test]
    fn the_long_build_form_reads_args_and_sizes() {
        let input = json!({"build": {"context": ".", "args": ["A=1", "B"], "shm_size": "1g", "no_cache": "true", "provenance": false}});
        let b = serde_json::from_value::<H>(input).unwrap().build.unwrap();
        assert_eq!(b.args["A"], Some("1".into()));
        assert_eq!(b.args["B"], None);
        assert_eq!(b.shm_size, Some(ByteSize(1 << 30)));
        assert!(b.no_cache);
        assert_eq!(b.provenance.as_deref(), Some("false"));
    }
}
