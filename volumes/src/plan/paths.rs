//! Lexical path handling of the mount plan: container targets, host sources
//! (`./data`, `../x`, `~/y`) and volume subpaths. Nothing here touches the
//! filesystem, so symlinks are not followed: `..` folds the textual parent and
//! never climbs above `/`.

use std::path::{Component, Path, PathBuf};

/// `path` with `.` dropped and `..` folded; `..` at the root stays at the root.
pub fn normalize_lexically(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    out
}

/// A host path as written in a stack file made absolute: `~` expands to
/// `home`, a relative path joins `project_dir`, then [`normalize_lexically`].
pub fn resolve_host_path(
    raw: &str,
    project_dir: &Path,
    home: Option<&Path>,
) -> Result<PathBuf, &'static str> {
    let joined = match raw.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            let home = home.ok_or("`~` used but the home directory is unknown")?;
            home.join(rest.trim_start_matches('/'))
        }
        Some(_) => return Err("`~user` paths are not supported"),
        None => project_dir.join(raw),
    };
    let path = normalize_lexically(&joined);
    if !path.is_absolute() {
        return Err("does not resolve to an absolute path");
    }
    Ok(path)
}

/// A container target normalized (`/data/` → `/data`), or why it is refused.
pub(super) fn normalize_target(target: &str) -> Result<String, &'static str> {
    if !target.starts_with('/') {
        return Err("must be an absolute path");
    }
    let mut parts = Vec::new();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("must not contain `..`"),
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return Err("must not be `/`");
    }
    Ok(format!("/{}", parts.join("/")))
}

/// A volume subpath if it stays inside the volume (relative, no `..`), normalized.
pub(super) fn check_subpath(subpath: &str) -> Option<String> {
    let mut parts = Vec::new();
    for component in Path::new(subpath).components() {
        match component {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}
