//! The loader's entry point: [`load`] runs the whole pipeline and returns a
//! normalized, validated [`Loaded`] project, or every problem found.
//!
//! Order: read + interpolate + merge ([`crate::load`]) → include → extends →
//! relative paths → profiles → schema → references → normalize → typing →
//! checks on the typed project. Nothing is returned when any step found an error.

use std::collections::HashMap;

use indexmap::IndexMap;
use sha2::{Digest, Sha256};

use crate::diag::{Diagnostic, Diagnostics};
use crate::load::{LoadError, LoadOptions, read_project};
use crate::model::Project;
use crate::yaml::{Node, PathSeg};
use crate::{normalize, paths, resolve, validate};

/// Service fields left out of the config hash: changing them must not recreate
/// a container (scaling, start order, pull behaviour, profile membership).
pub const HASH_EXCLUDED_FIELDS: [&str; 5] = [
    "scale",
    "depends_on",
    "pull_policy",
    "profiles",
    "deploy.replicas",
];

/// A loaded project and what loading it found out.
#[derive(Debug)]
pub struct Loaded {
    /// The normalized project.
    pub project: Project,
    /// Every profile named in the files (before filtering).
    pub all_profiles: Vec<String>,
    /// Warnings to show the user (obsolete keys and the like).
    pub warnings: Vec<String>,
    /// Files read, in merge order.
    pub files: Vec<std::path::PathBuf>,
}

/// Load, merge, validate and normalize the project described by `opts`.
pub fn load(opts: &LoadOptions) -> Result<Loaded, LoadError> {
    let raw = read_project(opts)?;
    let mut doc = raw.doc;
    let mut diags = Vec::new();
    resolve::resolve_includes(&mut doc, &raw.project_dir, &raw.env, &mut diags, 0)?;
    resolve::resolve_extends(&mut doc, &raw.project_dir, &raw.env, &mut diags)?;
    bail(&mut diags)?;
    paths::resolve_relative_paths(&mut doc, &raw.project_dir);
    let all_profiles = resolve::all_profiles(&doc);
    resolve::apply_profiles(&mut doc, &raw.profiles);
    let name = normalize::project_name(&doc, raw.name_override.as_deref(), &raw.project_dir);
    if name.is_empty() {
        diags.push(Diagnostic::at(
            &doc.pos,
            "name",
            "project name is empty after normalization; set `name:` or use -p",
        ));
    }
    // Normalization leaves values of the wrong shape alone, so the schema
    // still sees them; checking after it types the tree to JSON only once.
    normalize::normalize_tree(&mut doc, &name, &raw.env, &mut diags);
    let json = doc.to_json();
    validate::check_schema(&doc, &json, opts.schema_cache.as_deref(), &mut diags);
    bail(&mut diags)?;
    validate::check_references(&doc, &mut diags);
    bail(&mut diags)?;
    let project = validate::to_model(&doc, &json, &mut diags);
    bail(&mut diags)?;
    let project = project.ok_or_else(|| LoadError::Invalid(Diagnostics::default()))?;
    check_typed(&doc, &project, &mut diags);
    bail(&mut diags)?;
    Ok(Loaded {
        project,
        all_profiles,
        warnings: raw.warnings,
        files: raw.files,
    })
}

fn bail(diags: &mut Vec<Diagnostic>) -> Result<(), LoadError> {
    if diags.is_empty() {
        Ok(())
    } else {
        Err(LoadError::Invalid(
            Diagnostics(std::mem::take(diags)).sorted(),
        ))
    }
}

/// Checks that need short syntaxes expanded: `container_name` with several
/// replicas, restart policies, and two services publishing the same host port.
fn check_typed(doc: &Node, project: &Project, diags: &mut Vec<Diagnostic>) {
    let mut published: HashMap<(String, String, String), String> = HashMap::new();
    for (name, svc) in &project.services {
        let at = |key: &str| key_position(doc, name, key);
        let replicas = svc
            .deploy
            .as_ref()
            .and_then(|d| d.replicas)
            .or(svc.scale)
            .unwrap_or(1);
        if replicas > 1 && svc.container_name.is_some() {
            diags.push(Diagnostic::at(
                &at("container_name"),
                format!("services.{name}.container_name"),
                format!("container_name cannot be used with {replicas} replicas: container names must be unique"),
            ));
        }
        if let Some(policy) = svc.restart.as_deref().filter(|p| !valid_restart(p)) {
            diags.push(Diagnostic::at(
                &at("restart"),
                format!("services.{name}.restart"),
                format!("invalid restart policy \"{policy}\": use no, always, on-failure[:max-retries] or unless-stopped"),
            ));
        }
        for port in &svc.ports {
            let Some(host_port) = port.published.clone() else {
                continue;
            };
            let host_ip = port
                .host_ip
                .clone()
                .filter(|ip| !ip.is_empty())
                .unwrap_or_else(|| "0.0.0.0".into());
            let key = (host_ip, host_port, port.protocol.to_lowercase());
            if let Some(other) = published.insert(key.clone(), name.clone()) {
                diags.push(Diagnostic::at(
                    &at("ports"),
                    format!("services.{name}.ports"),
                    format!(
                        "host port {}:{}/{} is already published by service `{other}`",
                        key.0, key.1, key.2
                    ),
                ));
            }
        }
    }
}

/// Where `services.<service>.<key>` is written (its key), else the service.
fn key_position(doc: &Node, service: &str, key: &str) -> crate::yaml::Pos {
    let path = [
        PathSeg::Key("services".into()),
        PathSeg::Key(service.into()),
        PathSeg::Key(key.into()),
    ];
    let node = doc
        .at_path(&path)
        .or_else(|| doc.at_path(&path[..2]))
        .unwrap_or(doc);
    node.key_pos.clone().unwrap_or_else(|| node.pos.clone())
}

fn valid_restart(policy: &str) -> bool {
    match policy.split_once(':') {
        Some(("on-failure", n)) => n.parse::<u32>().is_ok(),
        Some(_) => false,
        None => matches!(policy, "no" | "always" | "on-failure" | "unless-stopped"),
    }
}

/// The project as `rcompose config` prints it: `$` written as `$$`, so that
/// the output, loaded again, gives the same project.
pub fn config_json(project: &Project) -> serde_json::Value {
    let mut value = serde_json::to_value(project).unwrap_or_default();
    escape_dollars(&mut value);
    value
}

fn escape_dollars(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) if s.contains('$') => *s = s.replace('$', "$$"),
        serde_json::Value::Array(a) => a.iter_mut().for_each(escape_dollars),
        serde_json::Value::Object(o) => o.values_mut().for_each(escape_dollars),
        _ => {}
    }
}

/// `service` as JSON without the fields in [`HASH_EXCLUDED_FIELDS`]: what
/// the config hash covers.
pub fn hash_projection<T: serde::Serialize>(service: &T) -> serde_json::Value {
    let mut value = serde_json::to_value(service).unwrap_or_default();
    if let Some(obj) = value.as_object_mut() {
        for field in HASH_EXCLUDED_FIELDS {
            match field.split_once('.') {
                Some((outer, inner)) => {
                    if let Some(o) = obj.get_mut(outer).and_then(|v| v.as_object_mut()) {
                        o.remove(inner);
                        if o.is_empty() {
                            obj.remove(outer);
                        }
                    }
                }
                None => {
                    obj.remove(field);
                }
            }
        }
    }
    value
}

/// SHA-256 (hex) over canonical JSON (sorted keys) of `service` without the
/// fields in [`HASH_EXCLUDED_FIELDS`].
pub fn config_hash<T: serde::Serialize>(service: &T) -> String {
    let value = hash_projection(service);
    let mut out = String::new();
    canonical_json(&value, &mut out);
    let digest = Sha256::digest(out.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// JSON with object keys sorted and no insignificant white space.
pub fn canonical_json(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(o) => {
            let sorted: IndexMap<&String, &serde_json::Value> = {
                let mut v: Vec<_> = o.iter().collect();
                v.sort_by(|a, b| a.0.cmp(b.0));
                v.into_iter().collect()
            };
            out.push('{');
            for (i, (k, v)) in sorted.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String((*k).clone()).to_string());
                out.push(':');
                canonical_json(v, out);
            }
            out.push('}');
        }
        serde_json::Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}
