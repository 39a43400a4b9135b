//! Relative paths in a stack file resolve against the project directory (or the
//! directory of an included file). This runs on the tree, before typing, so that
//! each included file can resolve against its own directory.
//!
//! Resolved: bind-mount sources (short `./x:/y` and long `type: bind`), `build`
//! contexts that are local paths, `env_file`, `label_file`, and the `file` of
//! top-level configs and secrets. `~` expands to `$HOME` when it is known.

use std::path::Path;

use crate::yaml::{Node, Value};

/// Make every relative path of `doc` absolute against `dir`.
pub fn resolve_relative_paths(doc: &mut Node, dir: &Path) {
    let Some(top) = doc.as_map_mut() else { return };
    if let Some(services) = top.get_mut("services").and_then(Node::as_map_mut) {
        for service in services.values_mut() {
            resolve_service(service, dir);
        }
    }
    for section in ["configs", "secrets"] {
        if let Some(entries) = top.get_mut(section).and_then(Node::as_map_mut) {
            for entry in entries.values_mut() {
                if let Some(f) = entry.as_map_mut().and_then(|m| m.get_mut("file")) {
                    resolve_scalar(f, dir);
                }
            }
        }
    }
}

/// Make the relative paths of one service definition absolute against `dir`.
pub fn resolve_service(service: &mut Node, dir: &Path) {
    let Some(map) = service.as_map_mut() else {
        return;
    };
    if let Some(build) = map.get_mut("build") {
        match build.as_map_mut() {
            Some(b) => {
                if let Some(ctx) = b.get_mut("context") {
                    resolve_context(ctx, dir);
                }
            }
            None => resolve_context(build, dir),
        }
    }
    for key in ["env_file", "label_file"] {
        if let Some(node) = map.get_mut(key) {
            resolve_file_list(node, dir);
        }
    }
    if let Some(Value::Seq(vols)) = map.get_mut("volumes").map(|n| &mut n.value) {
        for v in vols {
            resolve_volume(v, dir);
        }
    }
}

fn resolve_file_list(node: &mut Node, dir: &Path) {
    match &mut node.value {
        Value::Scalar(_) => resolve_scalar(node, dir),
        Value::Seq(items) => {
            for item in items {
                match item.as_map_mut().and_then(|m| m.get_mut("path")) {
                    Some(p) => resolve_scalar(p, dir),
                    None => resolve_scalar(item, dir),
                }
            }
        }
        _ => {}
    }
}

fn resolve_context(ctx: &mut Node, dir: &Path) {
    let remote = ctx.as_scalar_text().is_some_and(|t| {
        t.contains("://") || t.starts_with("git@") || t.starts_with("github.com/")
    });
    if !remote {
        resolve_scalar(ctx, dir);
    }
}

fn resolve_volume(vol: &mut Node, dir: &Path) {
    if let Some(m) = vol.as_map_mut() {
        let is_bind = m.get("type").and_then(Node::as_scalar_text) == Some("bind");
        if let (true, Some(src)) = (is_bind, m.get_mut("source")) {
            resolve_scalar(src, dir);
        }
        return;
    }
    let Value::Scalar(s) = &mut vol.value else {
        return;
    };
    let Some((src, rest)) = s.text.split_once(':') else {
        return;
    };
    if src.starts_with('.') || src.starts_with('~') {
        s.text = format!("{}:{rest}", absolute(src, dir));
    }
}

fn resolve_scalar(node: &mut Node, dir: &Path) {
    if let Value::Scalar(s) = &mut node.value {
        s.text = absolute(&s.text, dir);
    }
}

/// `p` made absolute against `dir`, with `~` expanded and `.`/`..` folded.
pub fn absolute(p: &str, dir: &Path) -> String {
    let expanded = match (p.strip_prefix('~'), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            format!("{}{rest}", home.to_string_lossy())
        }
        _ => p.to_string(),
    };
    let joined = dir.join(&expanded);
    let mut out = std::path::PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_sources_and_env_files_resolve_against_the_project_directory() {
        let mut doc = crate::yaml::parse(
            "t.yml",
            "services:\n  web:\n    build: ./app\n    env_file: [.env.web]\n    volumes: ['./src:/src:ro', 'data:/data', {type: bind, source: ../x, target: /x}]\n",
        )
        .unwrap()
        .remove(0);
        resolve_relative_paths(&mut doc, Path::new("/p/q"));
        let j = doc.to_json();
        let web = &j["services"]["web"];
        assert_eq!(web["build"], "/p/q/app");
        assert_eq!(web["env_file"][0], "/p/q/.env.web");
        assert_eq!(web["volumes"][0], "/p/q/src:/src:ro");
        assert_eq!(web["volumes"][1], "data:/data");
        assert_eq!(web["volumes"][2]["source"], "/p/x");
    }
}
