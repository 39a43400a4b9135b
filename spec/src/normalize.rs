//! Normalization on the tree, before typing: project name, the implicit `default`
//! network, resource names (`<project>_<key>` unless `name:` or external),
//! `env_file` folded into `environment`, and `KEY`-only variables taken from the
//! environment. Short syntaxes are expanded by typing ([`crate::model`]).

use std::path::Path;

use indexmap::IndexMap;

use crate::diag::Diagnostic;
use crate::yaml::{Node, Pos, Value};

/// Lowercase and keep `[a-z0-9_-]`, as Compose does for project names; leading
/// `_` and `-` are dropped because a project name must start with a letter or digit.
pub fn normalize_project_name(name: &str) -> String {
    let kept: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    kept.trim_start_matches(['_', '-']).to_string()
}

/// The project name: `-p`/`COMPOSE_PROJECT_NAME`, then `name:`, then the directory.
pub fn project_name(doc: &Node, name_override: Option<&str>, project_dir: &Path) -> String {
    let from_dir = project_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let chosen = name_override
        .map(String::from)
        .or_else(|| {
            doc.get("name")
                .and_then(Node::as_scalar_text)
                .map(String::from)
        })
        .unwrap_or(from_dir);
    normalize_project_name(&chosen)
}

/// Apply every tree-level normalization to `doc` for project `name`.
pub fn normalize_tree(
    doc: &mut Node,
    name: &str,
    env: &IndexMap<String, String>,
    diags: &mut Vec<Diagnostic>,
) {
    let pos = doc.pos.clone();
    let Some(top) = doc.as_map_mut() else { return };
    top.insert("name".into(), Node::string(name, pos.clone()));
    let mut uses_default = false;
    if let Some(services) = top.get_mut("services").and_then(Node::as_map_mut) {
        for (svc_name, svc) in services.iter_mut() {
            uses_default |= default_network(svc);
            fold_env_files(svc, svc_name, env, diags);
        }
    }
    if uses_default {
        let networks = section(top, "networks", &pos);
        networks
            .entry("default".into())
            .or_insert_with(|| Node::new(Value::Null, pos.clone()));
    }
    for key in ["networks", "volumes", "configs", "secrets"] {
        if let Some(entries) = top.get_mut(key).and_then(Node::as_map_mut) {
            for (k, v) in entries.iter_mut() {
                name_resource(v, name, k);
            }
        }
    }
}

fn section<'a>(
    top: &'a mut IndexMap<String, Node>,
    key: &str,
    pos: &Pos,
) -> &'a mut IndexMap<String, Node> {
    let node = top
        .entry(key.into())
        .or_insert_with(|| Node::new(Value::Map(IndexMap::new()), pos.clone()));
    if !matches!(node.value, Value::Map(_)) {
        node.value = Value::Map(IndexMap::new());
    }
    node.as_map_mut().expect("just made a map")
}

/// Give a service the `default` network when it names none and has no
/// `network_mode`. Returns whether it uses `default`.
fn default_network(svc: &mut Node) -> bool {
    let pos = svc.pos.clone();
    let Some(m) = svc.as_map_mut() else {
        return false;
    };
    if m.contains_key("network_mode") {
        return false;
    }
    match m.get("networks").map(|n| &n.value) {
        None | Some(Value::Null) => {
            let mut nets = IndexMap::new();
            nets.insert("default".to_string(), Node::new(Value::Null, pos.clone()));
            m.insert("networks".into(), Node::new(Value::Map(nets), pos));
            true
        }
        Some(Value::Seq(items)) => items.iter().any(|i| i.as_scalar_text() == Some("default")),
        Some(Value::Map(nets)) => nets.contains_key("default"),
        Some(Value::Scalar(_)) => false,
    }
}

/// `<project>_<key>` unless `name:` is set; an external resource is named by its key.
fn name_resource(node: &mut Node, project: &str, key: &str) {
    if node.is_null() {
        node.value = Value::Map(IndexMap::new());
    }
    let pos = node.pos.clone();
    let Some(m) = node.as_map_mut() else { return };
    if m.contains_key("name") {
        return;
    }
    let external =
        m.get("external").and_then(Node::resolve) == Some(crate::yaml::Resolved::Bool(true));
    let name = if external {
        key.to_string()
    } else {
        format!("{project}_{key}")
    };
    m.insert("name".into(), Node::string(name, pos));
}

/// Read each `env_file` into `environment` (explicit `environment` wins, later
/// files win over earlier ones) and fill `KEY`-only variables from `env`.
fn fold_env_files(
    svc: &mut Node,
    svc_name: &str,
    env: &IndexMap<String, String>,
    diags: &mut Vec<Diagnostic>,
) {
    let pos = svc.pos.clone();
    let Some(m) = svc.as_map_mut() else { return };
    // Leave values of the wrong shape for the schema check to report.
    let env_ok = m
        .get("environment")
        .is_none_or(|n| matches!(n.value, Value::Map(_) | Value::Seq(_) | Value::Null));
    let files_ok = m.get("env_file").is_none_or(|n| {
        let count = n.as_seq().map_or(1, <[Node]>::len);
        env_file_entries(n).len() == count
    });
    if !env_ok || !files_ok {
        return;
    }
    let mut vars: IndexMap<String, Node> = IndexMap::new();
    if let Some(files) = m.shift_remove("env_file") {
        for (path, required, raw, node) in env_file_entries(&files) {
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    diags.push(Diagnostic::at(
                        &node.pos,
                        format!("services.{svc_name}.env_file"),
                        format!("failed to read env file {path}: {e}"),
                    ));
                    continue;
                }
            };
            let parsed = if raw {
                crate::dotenv::parse_env_file_raw(&path, &text)
            } else {
                crate::dotenv::parse_env_file(&path, &text, &|k| env.get(k).cloned())
            };
            match parsed {
                Ok(kv) => {
                    for (k, v) in kv {
                        let v = v.or_else(|| env.get(&k).cloned());
                        vars.insert(
                            k,
                            v.map(|v| Node::string(v, node.pos.clone()))
                                .unwrap_or_else(|| Node::new(Value::Null, node.pos.clone())),
                        );
                    }
                }
                Err(e) => diags.push(Diagnostic::at(
                    &node.pos,
                    format!("services.{svc_name}.env_file"),
                    crate::diag::error_chain(&e),
                )),
            }
        }
    }
    let explicit = m
        .shift_remove("environment")
        .map(|n| env_map(&n))
        .unwrap_or_default();
    for (k, v) in explicit {
        vars.insert(k, v);
    }
    for (k, v) in vars.iter_mut() {
        if v.is_null()
            && let Some(val) = env.get(k)
        {
            *v = Node::string(val.clone(), v.pos.clone());
        }
    }
    if !vars.is_empty() {
        m.insert("environment".into(), Node::new(Value::Map(vars), pos));
    }
}

/// `(path, required, raw format, node)` of each entry of `env_file`.
fn env_file_entries(files: &Node) -> Vec<(String, bool, bool, Node)> {
    let items: Vec<Node> = match &files.value {
        Value::Seq(items) => items.clone(),
        _ => vec![files.clone()],
    };
    items
        .into_iter()
        .filter_map(|item| {
            if let Some(p) = item.as_scalar_text() {
                return Some((p.to_string(), true, false, item.clone()));
            }
            let path = item.get("path")?.as_scalar_text()?.to_string();
            let required = item.get("required").and_then(Node::resolve)
                != Some(crate::yaml::Resolved::Bool(false));
            let raw = item.get("format").and_then(Node::as_scalar_text) == Some("raw");
            Some((path, required, raw, item))
        })
        .collect()
}

/// `environment` in either form as a map of nodes (`KEY` alone → null).
fn env_map(node: &Node) -> IndexMap<String, Node> {
    match &node.value {
        Value::Map(m) => m.clone(),
        Value::Seq(items) => items
            .iter()
            .filter_map(|i| {
                let text = i.as_scalar_text()?;
                Some(match text.split_once('=') {
                    Some((k, v)) => (k.to_string(), Node::string(v, i.pos.clone())),
                    None => (text.to_string(), Node::new(Value::Null, i.pos.clone())),
                })
            })
            .collect(),
        _ => IndexMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_are_lowercased_and_stripped_to_the_allowed_set() {
        assert_eq!(normalize_project_name("My App.v2"), "myappv2");
        assert_eq!(normalize_project_name("_x-Y"), "x-y");
    }

    #[test]
    fn services_without_networks_join_the_default_network_and_names_get_the_project_prefix() {
        let mut doc = crate::yaml::parse("t.yml", "services:\n  web: {image: x}\n  db: {image: y, network_mode: host}\nvolumes:\n  data:\n  ext: {external: true}\n")
            .unwrap()
            .remove(0);
        normalize_tree(&mut doc, "shop", &IndexMap::new(), &mut Vec::new());
        let j = doc.to_json();
        assert_eq!(
            j["services"]["web"]["networks"],
            serde_json::json!({"default": null})
        );
        assert!(j["services"]["db"].get("networks").is_none());
        assert_eq!(j["networks"]["default"]["name"], "shop_default");
        assert_eq!(j["volumes"]["data"]["name"], "shop_data");
        assert_eq!(j["volumes"]["ext"]["name"], "ext");
    }
}
