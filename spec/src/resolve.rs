//! Tree-level composition after merging: `include`, `extends` and profiles.
//!
//! Each step works on the merged [`Node`] tree so that every value keeps the
//! position of the file it came from, and collects every problem it finds.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::diag::{Diagnostic, did_you_mean};
use crate::load::{LoadError, read_document};
use crate::merge;
use crate::yaml::{Node, Value};

/// Resources an included file contributes to the including project.
const INCLUDED_SECTIONS: [&str; 6] = [
    "services", "networks", "volumes", "configs", "secrets", "models",
];

/// Replace every service's `extends` by the service it extends merged under it.
pub fn resolve_extends(
    doc: &mut Node,
    project_dir: &Path,
    env: &IndexMap<String, String>,
    diags: &mut Vec<Diagnostic>,
) -> Result<(), LoadError> {
    let Some(services) = doc.get("services").and_then(Node::as_map) else {
        return Ok(());
    };
    if !services.values().any(|s| s.get("extends").is_some()) {
        return Ok(());
    }
    let services = services.clone();
    let mut resolved = IndexMap::new();
    for (name, service) in services.iter().filter(|(_, s)| s.get("extends").is_some()) {
        let mut chain = vec![(None, name.clone())];
        let out = extend_service(service, &services, project_dir, env, &mut chain, diags)?;
        resolved.insert(name.clone(), out);
    }
    if let Some(map) = doc
        .as_map_mut()
        .and_then(|m| m.get_mut("services"))
        .and_then(Node::as_map_mut)
    {
        for (name, node) in resolved {
            map.insert(name, node);
        }
    }
    Ok(())
}

/// `(file or None for the current document, service name)` already on the chain.
type Chain = Vec<(Option<PathBuf>, String)>;

fn extend_service(
    service: &Node,
    siblings: &IndexMap<String, Node>,
    dir: &Path,
    env: &IndexMap<String, String>,
    chain: &mut Chain,
    diags: &mut Vec<Diagnostic>,
) -> Result<Node, LoadError> {
    let Some(ext) = service.get("extends") else {
        return Ok(service.clone());
    };
    let here = chain.last().map(|c| c.1.clone()).unwrap_or_default();
    let path = format!("services.{here}.extends");
    let (target, file) = match (ext.as_str(), ext.get("service").and_then(Node::as_str)) {
        (Some(s), _) | (None, Some(s)) => (s.to_string(), ext.get("file").and_then(Node::as_str)),
        _ => {
            diags.push(Diagnostic::at(
                &ext.pos,
                path,
                "extends takes a service name or {service, file}",
            ));
            return Ok(without_extends(service));
        }
    };
    let (base_siblings, base_dir, file_key) = match file {
        None => (
            siblings.clone(),
            dir.to_path_buf(),
            chain.last().and_then(|c| c.0.clone()),
        ),
        Some(f) => {
            let file_path = dir.join(f);
            let Some(other) = read_document(&file_path, env, diags)? else {
                return Ok(without_extends(service));
            };
            let services = other
                .get("services")
                .and_then(Node::as_map)
                .cloned()
                .unwrap_or_default();
            let parent = file_path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            (services, parent, Some(file_path))
        }
    };
    let link = (file_key, target.clone());
    if chain.contains(&link) {
        let names: Vec<&str> = chain.iter().map(|c| c.1.as_str()).collect();
        diags.push(Diagnostic::at(
            &ext.pos,
            path,
            format!("extends cycle: {} -> {target}", names.join(" -> ")),
        ));
        return Ok(without_extends(service));
    }
    let Some(base) = base_siblings.get(&target) else {
        let hint = did_you_mean(&target, base_siblings.keys().map(String::as_str));
        let mut d = Diagnostic::at(
            &ext.pos,
            path,
            format!("extends undefined service `{target}`"),
        );
        if let Some(h) = hint {
            d = d.with_hint(format!("did you mean `{h}`?"));
        }
        diags.push(d);
        return Ok(without_extends(service));
    };
    chain.push(link);
    let mut base = extend_service(base, &base_siblings, &base_dir, env, chain, diags)?;
    chain.pop();
    if file.is_some() {
        // Paths in another file are relative to that file, as in Compose.
        crate::paths::resolve_service(&mut base, &base_dir);
    }
    Ok(merge_services(base, without_extends(service)))
}

fn without_extends(service: &Node) -> Node {
    let mut s = service.clone();
    if let Some(m) = s.as_map_mut() {
        m.shift_remove("extends");
    }
    s
}

/// Merge a service over its base with the same rules as merging files.
fn merge_services(base: Node, over: Node) -> Node {
    let wrap = |n: Node| {
        let pos = n.pos.clone();
        let mut services = IndexMap::new();
        services.insert("s".to_string(), n);
        let mut top = IndexMap::new();
        top.insert(
            "services".to_string(),
            Node::new(Value::Map(services), pos.clone()),
        );
        Node::new(Value::Map(top), pos)
    };
    let pos = over.pos.clone();
    let merged = merge::merge(wrap(base), wrap(over));
    let mut out = merged
        .at_path(&[
            crate::yaml::PathSeg::Key("services".into()),
            crate::yaml::PathSeg::Key("s".into()),
        ])
        .cloned()
        .unwrap_or_else(|| Node::new(Value::Map(IndexMap::new()), pos.clone()));
    out.pos = pos;
    out
}

/// Load each `include` entry as a project of its own (its directory, its `.env`)
/// and add its resources; a resource defined on both sides is an error.
pub fn resolve_includes(
    doc: &mut Node,
    project_dir: &Path,
    env: &IndexMap<String, String>,
    diags: &mut Vec<Diagnostic>,
    depth: usize,
) -> Result<(), LoadError> {
    let Some(map) = doc.as_map_mut() else {
        return Ok(());
    };
    let Some(includes) = map.shift_remove("include") else {
        return Ok(());
    };
    let Some(items) = includes.as_seq() else {
        diags.push(Diagnostic::at(
            &includes.pos,
            "include",
            "include takes a list",
        ));
        return Ok(());
    };
    if depth > 16 {
        diags.push(Diagnostic::at(
            &includes.pos,
            "include",
            "includes nest more than 16 deep (cycle?)",
        ));
        return Ok(());
    }
    for (i, item) in items.iter().enumerate() {
        let included = load_include(item, project_dir, env, diags, depth)?;
        if let Some(included) = included {
            add_included(doc, included, &format!("include[{i}]"), &item.pos, diags);
        }
    }
    Ok(())
}

fn load_include(
    item: &Node,
    project_dir: &Path,
    env: &IndexMap<String, String>,
    diags: &mut Vec<Diagnostic>,
    depth: usize,
) -> Result<Option<Node>, LoadError> {
    let paths: Vec<String> = match (item.as_str(), item.get("path")) {
        (Some(p), _) => vec![p.to_string()],
        (None, Some(p)) => match (p.as_str(), p.as_seq()) {
            (Some(s), _) => vec![s.to_string()],
            (_, Some(seq)) => seq
                .iter()
                .filter_map(|n| n.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    let Some(first) = paths.first() else {
        diags.push(Diagnostic::at(
            &item.pos,
            "include",
            "include entry needs a path",
        ));
        return Ok(None);
    };
    let first = project_dir.join(first);
    let sub_dir = match item.get("project_directory").and_then(Node::as_str) {
        Some(d) => project_dir.join(d),
        None => first.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let mut sub_env = env.clone();
    let env_files: Vec<PathBuf> = match item.get("env_file") {
        Some(n) if n.as_str().is_some() => vec![project_dir.join(n.as_str().unwrap_or_default())],
        Some(n) => n
            .as_seq()
            .unwrap_or_default()
            .iter()
            .filter_map(Node::as_str)
            .map(|s| project_dir.join(s))
            .collect(),
        None => [sub_dir.join(".env")]
            .into_iter()
            .filter(|p| p.exists())
            .collect(),
    };
    for f in env_files {
        for (k, v) in crate::load::read_env_file(&f, &|k| env.get(k).cloned())? {
            if let (false, Some(v)) = (env.contains_key(&k), v) {
                sub_env.insert(k, v);
            }
        }
    }
    let files: Vec<PathBuf> = paths.iter().map(|p| project_dir.join(p)).collect();
    let mut warnings = Vec::new();
    let mut sub = crate::load::read_and_merge(&files, &sub_env, diags, &mut warnings)?;
    resolve_includes(&mut sub, &sub_dir, &sub_env, diags, depth + 1)?;
    resolve_extends(&mut sub, &sub_dir, &sub_env, diags)?;
    crate::paths::resolve_relative_paths(&mut sub, &sub_dir);
    Ok(Some(sub))
}

fn add_included(
    doc: &mut Node,
    included: Node,
    path: &str,
    pos: &crate::yaml::Pos,
    diags: &mut Vec<Diagnostic>,
) {
    let Value::Map(inc) = included.value else {
        return;
    };
    let Some(top) = doc.as_map_mut() else { return };
    for section in INCLUDED_SECTIONS {
        let Some(Value::Map(entries)) = inc.get(section).map(|n| n.value.clone()) else {
            continue;
        };
        let target = top
            .entry(section.to_string())
            .or_insert_with(|| Node::new(Value::Map(IndexMap::new()), pos.clone()));
        if target.is_null() {
            target.value = Value::Map(IndexMap::new());
        }
        let Some(target) = target.as_map_mut() else {
            continue;
        };
        for (k, v) in entries {
            if target.contains_key(&k) {
                diags.push(Diagnostic::at(
                    pos,
                    path,
                    format!("{section}.{k} is defined both in the project and in an included file"),
                ));
                continue;
            }
            target.insert(k, v);
        }
    }
}

/// Remove services whose profiles are all inactive (`*` activates every profile).
/// Returns the removed services' names.
pub fn apply_profiles(doc: &mut Node, active: &[String]) -> Vec<String> {
    let all = active.iter().any(|p| p == "*");
    let Some(services) = doc
        .as_map_mut()
        .and_then(|m| m.get_mut("services"))
        .and_then(Node::as_map_mut)
    else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    services.retain(|name, svc| {
        let profiles: Vec<&str> = svc
            .get("profiles")
            .and_then(Node::as_seq)
            .unwrap_or_default()
            .iter()
            .filter_map(Node::as_scalar_text)
            .collect();
        let keep =
            profiles.is_empty() || all || profiles.iter().any(|p| active.iter().any(|a| a == p));
        if !keep {
            removed.push(name.clone());
        }
        keep
    });
    removed
}

/// Every profile named by any service, sorted.
pub fn all_profiles(doc: &Node) -> Vec<String> {
    let mut out: Vec<String> = doc
        .get("services")
        .and_then(Node::as_map)
        .into_iter()
        .flat_map(|m| m.values())
        .flat_map(|s| s.get("profiles").and_then(Node::as_seq).unwrap_or_default())
        .filter_map(|p| p.as_scalar_text().map(String::from))
        .collect();
    out.sort();
    out.dedup();
    out
}
