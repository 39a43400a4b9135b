//! Validation of the merged tree: the JSON Schema of the stack file (types,
//! unknown keys, enums), then typing, then the checks a schema cannot express
//! (references, dependency cycles, replicas vs `container_name`, port conflicts).
//!
//! Every pass collects all of its problems as [`Diagnostic`]s positioned in the
//! file the offending value came from.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::OnceLock;

use crate::diag::{Diagnostic, did_you_mean};
use crate::model::{self, Project};
use crate::yaml::{Node, PathSeg, Pos, Value, path_to_string};

/// The compiled schema of the stack file, built once per process.
fn validator() -> &'static (serde_json::Value, jsonschema::Validator) {
    static CELL: OnceLock<(serde_json::Value, jsonschema::Validator)> = OnceLock::new();
    CELL.get_or_init(|| {
        let schema = serde_json::to_value(model::stack_file_schema()).unwrap_or_default();
        let validator = jsonschema::draft7::new(&schema).unwrap_or_else(|e| {
            // The schema is generated from our own types; failing here is a bug.
            panic!("the generated stack-file schema does not compile: {e}")
        });
        (schema, validator)
    })
}

/// Check `json` (the value of `doc`) against the stack-file schema; one
/// diagnostic per violation, positioned through `doc`.
///
/// Making the schema and compiling it costs more than the rest of a load, so
/// with a `cache` directory a document that passed this build's schema before
/// is not checked again: the directory holds one empty file per such
/// document, named by the digest of the build's schema key and the document.
pub fn check_schema(
    doc: &Node,
    json: &serde_json::Value,
    cache: Option<&Path>,
    diags: &mut Vec<Diagnostic>,
) {
    let entry = cache.map(|dir| dir.join(cache_entry(json)));
    if entry.as_ref().is_some_and(|e| e.exists()) {
        return;
    }
    let (schema, validator) = validator();
    let before = diags.len();
    for err in validator.iter_errors(json) {
        let path = pointer_to_path(doc, err.instance_path().as_str());
        diags.extend(schema_diagnostic(doc, schema, &path, &err));
    }
    if let Some(entry) = entry.filter(|_| diags.len() == before) {
        remember(&entry);
    }
}

/// Entries the schema cache keeps before it starts afresh.
const CACHE_ENTRIES: usize = 128;

/// The cache file name of `json`: a SHA-256 over the build's schema key and
/// the document.
fn cache_entry(json: &serde_json::Value) -> String {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    hasher.update(env!("RCOMPOSE_SCHEMA_KEY").as_bytes());
    hasher.update(b"\n");
    hasher.update(serde_json::to_vec(json).unwrap_or_default());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Adds `entry` to its cache, best effort: a cache that cannot be written
/// only means the schema is checked again next time. A full cache is
/// emptied first, so it stays small.
fn remember(entry: &Path) {
    let Some(dir) = entry.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        let old: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        if old.len() >= CACHE_ENTRIES {
            for path in old {
                let _ = std::fs::remove_file(path);
            }
        }
    }
    let _ = std::fs::File::create(entry);
}

fn schema_diagnostic(
    doc: &Node,
    schema: &serde_json::Value,
    path: &[PathSeg],
    err: &jsonschema::ValidationError<'_>,
) -> Vec<Diagnostic> {
    use jsonschema::error::ValidationErrorKind as K;
    let node = doc.at_path(path).unwrap_or(doc);
    let shown = path_to_string(path);
    match err.kind() {
        K::AdditionalProperties { unexpected } => {
            let known = known_properties(schema, err.schema_path().as_str());
            unexpected
                .iter()
                .map(|key| unknown_key(node, &shown, key, &known))
                .collect()
        }
        K::FalseSchema => {
            let (parent_path, key) = match path.split_last() {
                Some((PathSeg::Key(k), parent)) => (parent.to_vec(), k.clone()),
                _ => (path.to_vec(), String::new()),
            };
            let parent = doc.at_path(&parent_path).unwrap_or(doc);
            let parent_schema = err
                .schema_path()
                .as_str()
                .rsplit_once("/additionalProperties")
                .map(|p| p.0.to_string())
                .unwrap_or_default();
            let known = known_properties(schema, &format!("{parent_schema}/additionalProperties"));
            vec![unknown_key(
                parent,
                &path_to_string(&parent_path),
                &key,
                &known,
            )]
        }
        K::AnyOf { context } | K::OneOfNotValid { context } => match best_branch(context) {
            Some(branch) => branch
                .iter()
                .flat_map(|e| {
                    let p = pointer_to_path(doc, e.instance_path().as_str());
                    schema_diagnostic(doc, schema, &p, e)
                })
                .collect(),
            None => vec![Diagnostic::at(
                node_pos(node),
                shown,
                lowercase_first(&describe(err)),
            )],
        },
        _ => vec![Diagnostic::at(
            node_pos(node),
            shown,
            lowercase_first(&describe(err)),
        )],
    }
}

/// Of the alternatives of an `anyOf`/`oneOf`, the one whose type matched (its
/// errors are about content, not about the value's type), so the user reads
/// "unknown key `drivr`" rather than "not a valid value".
fn best_branch<'a>(
    context: &'a [Vec<jsonschema::ValidationError<'static>>],
) -> Option<&'a Vec<jsonschema::ValidationError<'static>>> {
    use jsonschema::error::ValidationErrorKind as K;
    let mut typed = context.iter().filter(|branch| {
        !branch.is_empty() && !branch.iter().any(|e| matches!(e.kind(), K::Type { .. }))
    });
    let first = typed.next()?;
    // Ambiguous when several alternatives have the right type.
    typed.next().is_none().then_some(first)
}

fn describe(err: &jsonschema::ValidationError<'_>) -> String {
    use jsonschema::error::ValidationErrorKind as K;
    match err.kind() {
        K::Type { kind } => format!("must be {}", type_words(&[format!("{kind:?}")])),
        K::Enum { options } => format!("must be one of {options}"),
        K::AnyOf { context } | K::OneOfNotValid { context } => {
            let kinds: Vec<String> = context
                .iter()
                .flatten()
                .filter_map(|e| match e.kind() {
                    K::Type { kind } => Some(format!("{kind:?}")),
                    _ => None,
                })
                .collect();
            if kinds.is_empty() {
                format!("{} is not a valid value here", err.instance())
            } else {
                format!(
                    "{} is not valid here: must be {}",
                    err.instance(),
                    type_words(&kinds)
                )
            }
        }
        _ => err.to_string(),
    }
}

/// "a mapping or a list" from the debug text of JSON Schema type sets.
fn type_words(kinds: &[String]) -> String {
    const WORDS: [(&str, &str); 7] = [
        ("Object", "a mapping"),
        ("Array", "a list"),
        ("String", "a string"),
        ("Integer", "an integer"),
        ("Number", "a number"),
        ("Boolean", "a boolean"),
        ("Null", "null"),
    ];
    let text = kinds.join(" ");
    let words: Vec<&str> = WORDS
        .iter()
        .filter(|(name, _)| text.contains(name))
        .map(|(_, word)| *word)
        .collect();
    if words.is_empty() {
        text
    } else {
        words.join(" or ")
    }
}

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn unknown_key(map_node: &Node, path: &str, key: &str, known: &[String]) -> Diagnostic {
    let pos = map_node.get(key).map(node_pos).unwrap_or(&map_node.pos);
    let d = Diagnostic::at(pos, path, format!("unknown key `{key}`"));
    match did_you_mean(key, known.iter().map(String::as_str)) {
        Some(h) => d.with_hint(format!("did you mean `{h}`?")),
        None => d,
    }
}

/// Position to report for a node: its key when it has one.
fn node_pos(node: &Node) -> &Pos {
    node.key_pos.as_ref().unwrap_or(&node.pos)
}

/// The `properties` of the schema object owning the failed `additionalProperties`.
fn known_properties(schema: &serde_json::Value, schema_path: &str) -> Vec<String> {
    let owner = schema_path
        .strip_suffix("/additionalProperties")
        .unwrap_or(schema_path);
    schema
        .pointer(owner)
        .and_then(|s| s.get("properties"))
        .and_then(|p| p.as_object())
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// A JSON pointer into `doc` as a path, telling indexes from keys by the tree.
pub fn pointer_to_path(doc: &Node, pointer: &str) -> Vec<PathSeg> {
    let mut path = Vec::new();
    let mut node = Some(doc);
    for raw in pointer.split('/').skip(1) {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        let step = match (node.map(|n| &n.value), seg.parse::<usize>()) {
            (Some(Value::Seq(_)), Ok(i)) => PathSeg::Index(i),
            _ => PathSeg::Key(seg),
        };
        node = node.and_then(|n| n.at_path(std::slice::from_ref(&step)));
        path.push(step);
    }
    path
}

/// Type `json` (the value of `doc`); every service and every top-level resource is typed on its own
/// so that a problem in one does not hide problems in the others.
pub fn to_model(
    doc: &Node,
    json: &serde_json::Value,
    diags: &mut Vec<Diagnostic>,
) -> Option<Project> {
    let whole = match serde_path_to_error::deserialize::<_, Project>(json) {
        Ok(p) => return Some(p),
        Err(e) => (serde_pointer(e.path()), e.inner().to_string()),
    };
    // Type each entry on its own to report every failing one, not just the first.
    let before = diags.len();
    for section in ["services", "networks", "volumes", "configs", "secrets"] {
        let Some(entries) = json.get(section).and_then(|s| s.as_object()) else {
            continue;
        };
        for (name, value) in entries.iter().filter(|(_, v)| !v.is_null()) {
            let result = match section {
                "services" => typed::<model::Service>(value),
                "networks" => typed::<model::Network>(value),
                "volumes" => typed::<model::Volume>(value),
                "configs" => typed::<model::Config>(value),
                _ => typed::<model::Secret>(value),
            };
            if let Err((pointer, message)) = result {
                let entry = format!("/{section}/{}", name.replace('~', "~0").replace('/', "~1"));
                diags.push(typing_diagnostic(
                    doc,
                    &format!("{entry}{pointer}"),
                    message,
                ));
            }
        }
    }
    if diags.len() == before {
        diags.push(typing_diagnostic(doc, &whole.0, whole.1));
    }
    None
}

fn typing_diagnostic(doc: &Node, pointer: &str, message: String) -> Diagnostic {
    let path = narrow_to_item(doc, pointer_to_path(doc, pointer), &message);
    let node = doc.at_path(&path).unwrap_or(doc);
    Diagnostic::at(node_pos(node), path_to_string(&path), message)
}

/// A short-syntax error names the offending entry (`invalid port "80:80:80:80"`);
/// when the path stops at the list, point at that entry instead.
fn narrow_to_item(doc: &Node, mut path: Vec<PathSeg>, message: &str) -> Vec<PathSeg> {
    let Some(items) = doc.at_path(&path).and_then(Node::as_seq) else {
        return path;
    };
    let hit = items.iter().position(|i| {
        i.as_scalar_text().is_some_and(|t| {
            message.contains(&format!("\"{t}\"")) || message.contains(&format!(" {t}:"))
        })
    });
    if let Some(i) = hit {
        path.push(PathSeg::Index(i));
    }
    path
}

fn typed<T: serde::de::DeserializeOwned>(
    value: &serde_json::Value,
) -> Result<(), (String, String)> {
    serde_path_to_error::deserialize::<_, T>(value)
        .map(drop)
        .map_err(|e| (serde_pointer(e.path()), e.inner().to_string()))
}

/// A serde path as a JSON pointer.
fn serde_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => {
                out.push_str(&format!("/{}", key.replace('~', "~0").replace('/', "~1")))
            }
            Segment::Enum { variant } => out.push_str(&format!("/{variant}")),
            Segment::Unknown => {}
        }
    }
    out
}

/// References to undefined services, networks, volumes, configs and secrets, and
/// `depends_on` cycles, checked on the tree so that each points at its line.
pub fn check_references(doc: &Node, diags: &mut Vec<Diagnostic>) {
    let Some(services) = doc.get("services").and_then(Node::as_map) else {
        return;
    };
    let defined = |section: &str| -> BTreeSet<&str> {
        doc.get(section)
            .and_then(Node::as_map)
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default()
    };
    let networks = defined("networks");
    let volumes = defined("volumes");
    let configs = defined("configs");
    let secrets = defined("secrets");
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    for (name, svc) in services {
        let here = format!("services.{name}");
        for (r, node) in names_in(svc.get("networks")) {
            if r != "default" {
                check_ref(diags, &here, "networks", "network", &r, node, &networks);
            }
        }
        for (r, node) in named_volumes(svc.get("volumes")) {
            check_ref(diags, &here, "volumes", "volume", &r, node, &volumes);
        }
        for (r, node) in sources(svc.get("configs")) {
            check_ref(diags, &here, "configs", "config", &r, node, &configs);
        }
        for (r, node) in sources(svc.get("secrets")) {
            check_ref(diags, &here, "secrets", "secret", &r, node, &secrets);
        }
        for (r, node) in names_in(svc.get("depends_on")) {
            let required = node.get("required").and_then(|n| n.resolve())
                != Some(crate::yaml::Resolved::Bool(false));
            if required {
                check_ref(diags, &here, "depends_on", "service", &r, node, &names);
            }
        }
        for (r, node) in names_in(svc.get("links")) {
            let target = r.split(':').next().unwrap_or_default().to_string();
            check_ref(diags, &here, "links", "service", &target, node, &names);
        }
    }
    check_cycles(services, diags);
}

fn check_ref(
    diags: &mut Vec<Diagnostic>,
    here: &str,
    key: &str,
    what: &str,
    name: &str,
    node: &Node,
    defined: &BTreeSet<&str>,
) {
    if defined.contains(name) {
        return;
    }
    let d = Diagnostic::at(
        node_pos(node),
        format!("{here}.{key}"),
        format!("refers to undefined {what} `{name}`"),
    );
    diags.push(match did_you_mean(name, defined.iter().copied()) {
        Some(h) => d.with_hint(format!("did you mean `{h}`?")),
        None => d,
    });
}

/// Names in a list-or-map field (`networks`, `depends_on`, `links`).
fn names_in(node: Option<&Node>) -> Vec<(String, &Node)> {
    match node.map(|n| &n.value) {
        Some(Value::Seq(items)) => items
            .iter()
            .filter_map(|i| Some((i.as_scalar_text()?.to_string(), i)))
            .collect(),
        Some(Value::Map(m)) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
        _ => Vec::new(),
    }
}

/// Named volumes used by a service (short `name:/path` or long `type: volume`).
fn named_volumes(node: Option<&Node>) -> Vec<(String, &Node)> {
    let Some(items) = node.and_then(Node::as_seq) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let source = match &item.value {
                Value::Scalar(s) => {
                    let (src, _) = s.text.split_once(':')?;
                    src.to_string()
                }
                Value::Map(m) => {
                    let ty = m
                        .get("type")
                        .and_then(Node::as_scalar_text)
                        .unwrap_or("volume");
                    if ty != "volume" {
                        return None;
                    }
                    m.get("source")?.as_scalar_text()?.to_string()
                }
                _ => return None,
            };
            let is_path = source.starts_with(['/', '.', '~']) || source.is_empty();
            (!is_path).then_some((source, item))
        })
        .collect()
}

/// `source` of each service config / secret (short or long form).
fn sources(node: Option<&Node>) -> Vec<(String, &Node)> {
    let Some(items) = node.and_then(Node::as_seq) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|i| {
            let s = i
                .as_scalar_text()
                .or_else(|| i.get("source")?.as_scalar_text())?;
            Some((s.to_string(), i))
        })
        .collect()
}

fn check_cycles(services: &indexmap::IndexMap<String, Node>, diags: &mut Vec<Diagnostic>) {
    let deps: BTreeMap<&str, Vec<&str>> = services
        .iter()
        .map(|(n, s)| {
            let targets = names_in(s.get("depends_on"))
                .into_iter()
                .filter_map(|(t, _)| services.get_key_value(&t).map(|(k, _)| k.as_str()))
                .collect();
            (n.as_str(), targets)
        })
        .collect();
    let mut state: HashMap<&str, u8> = HashMap::new();
    for start in deps.keys() {
        let mut stack = Vec::new();
        if let Some(cycle) = find_cycle(start, &deps, &mut state, &mut stack) {
            let first = cycle[0];
            let node = services
                .get(first)
                .and_then(|s| s.get("depends_on"))
                .unwrap_or(&services[first]);
            diags.push(Diagnostic::at(
                node_pos(node),
                format!("services.{first}.depends_on"),
                format!("dependency cycle: {}", cycle.join(" -> ")),
            ));
        }
    }
}

/// Depth-first search; 1 = on the stack, 2 = done. Returns the cycle, closed.
fn find_cycle<'a>(
    at: &'a str,
    deps: &BTreeMap<&'a str, Vec<&'a str>>,
    state: &mut HashMap<&'a str, u8>,
    stack: &mut Vec<&'a str>,
) -> Option<Vec<&'a str>> {
    match state.get(at) {
        Some(2) => return None,
        Some(1) => {
            let from = stack.iter().position(|s| *s == at).unwrap_or(0);
            let mut cycle = stack[from..].to_vec();
            cycle.push(at);
            return Some(cycle);
        }
        _ => {}
    }
    state.insert(at, 1);
    stack.push(at);
    for next in deps.get(at).into_iter().flatten() {
        if let Some(c) = find_cycle(next, deps, state, stack) {
            state.insert(at, 2);
            return Some(c);
        }
    }
    stack.pop();
    state.insert(at, 2);
    None
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    #[test]
    fn a_document_in_the_cache_is_not_checked_against_the_schema_again() {
        let dir = tempfile::tempdir().unwrap();
        let doc = crate::yaml::parse("t.yaml", "services: 3\n")
            .unwrap()
            .remove(0);
        let json = doc.to_json();
        let mut diags = Vec::new();
        check_schema(&doc, &json, Some(dir.path()), &mut diags);
        assert!(!diags.is_empty(), "the schema refuses services: 3");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // Had it passed this build's schema before, it would not be checked.
        std::fs::write(dir.path().join(cache_entry(&json)), "").unwrap();
        let mut diags = Vec::new();
        check_schema(&doc, &json, Some(dir.path()), &mut diags);
        assert!(diags.is_empty());
    }

    #[test]
    fn a_full_cache_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..CACHE_ENTRIES {
            std::fs::write(dir.path().join(format!("old{i}")), "").unwrap();
        }
        remember(&dir.path().join("new"));
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["new"]);
    }
}
