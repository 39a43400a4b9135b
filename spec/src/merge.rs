//! Merging an override Compose document onto a base document (`-f a.yml -f b.yml`).
//!
//! Files are interpolated one by one and then folded left to right with [`merge`].
//! The general rule is Compose's: mappings merge by key, scalars are replaced and
//! sequences are appended. The Compose specification makes exceptions per
//! attribute (commands replace, `ports`/`volumes`/`secrets`/… are unique by a key,
//! `environment`/`labels`/… merge by variable name whatever form each file uses,
//! `logging` with another driver starts over); those live in one table, `RULES`,
//! keyed by the path of the attribute.
//!
//! Invariants:
//! - the result carries no `!reset` / `!override` tags: a `!reset` value removes
//!   the key (or the sequence item), an `!override` value replaces the inherited
//!   one without merging, and both tags are dropped once applied;
//! - a merged node keeps the position of the node whose value won: the override's
//!   for replaced values, the base's for merged mappings and sequences, whose items
//!   keep their own positions;
//! - a key set in one file only keeps the form it was written in; a dict-like key
//!   set in both (`environment: [A=1]` and `environment: {B: 2}`) comes out in
//!   mapping form, as do `networks`, `models` and `depends_on` given as lists.

use std::collections::HashMap;

use indexmap::IndexMap;

use crate::yaml::{Node, Pos, Scalar, Tag, Value};

/// Merge the override document `over` onto `base`, by Compose's merge rules.
///
/// `!reset` values in `base` are applied first (as loading `base` alone would),
/// so merging several files is `files.reduce(merge)`.
pub fn merge(mut base: Node, over: Node) -> Node {
    strip_resets(&mut base);
    let pos = base.pos.clone();
    merge_at(&[], Some(base), over).unwrap_or_else(|| Node::new(Value::Null, pos))
}

/// Apply the tags of a file loaded on its own: remove every `!reset` value (it has
/// nothing to reset) and clear every `!override` tag (it has nothing to override).
///
/// The root node cannot remove itself; only its tag is cleared.
pub fn strip_resets(node: &mut Node) {
    node.tag = None;
    match &mut node.value {
        Value::Map(map) => {
            map.retain(|_, v| v.tag != Some(Tag::Reset));
            map.values_mut().for_each(strip_resets);
        }
        Value::Seq(items) => {
            items.retain(|v| v.tag != Some(Tag::Reset));
            items.iter_mut().for_each(strip_resets);
        }
        Value::Null | Value::Scalar(_) => {}
    }
}

/// The uniqueness key of a sequence item; items without one are always appended.
type KeyFn = fn(&Node) -> Option<String>;

/// How the values at one path merge.
#[derive(Clone, Copy)]
enum Rule {
    /// Mappings by key, sequences appended, anything else replaced.
    Merge,
    /// The override replaces the base value.
    Replace,
    /// `KEY=VALUE` list or mapping, merged as a mapping.
    KeyValues,
    /// `extra_hosts`: `host=ip` list or mapping to one or several addresses.
    Hosts,
    /// A list of names or a mapping of name to options, merged as a mapping.
    ToMap(Short),
    /// A scalar stands for a mapping with this single key (`build: .`).
    Wrap(&'static str),
    /// `logging`: another driver discards the inherited options.
    Logging,
    /// A sequence (or a single scalar) whose items are unique by a key; an item
    /// with the key of an earlier one merges into it, in place.
    Unique(KeyFn),
}

/// What a name in the list form of a [`Rule::ToMap`] attribute stands for.
#[derive(Clone, Copy)]
enum Short {
    /// `networks: [front]` is `networks: {front: null}`.
    Null,
    /// `depends_on: [db]` is `depends_on: {db: {condition: service_started, required: true}}`.
    DependsOn,
}

const UNIQUE_VALUES: Rule = Rule::Unique(text_key);

/// Exceptions to [`Rule::Merge`], by path (`*` matches any mapping key).
const RULES: &[(&str, Rule)] = &[
    ("services.*.command", Rule::Replace),
    ("services.*.entrypoint", Rule::Replace),
    ("services.*.healthcheck.test", Rule::Replace),
    ("services.*.ulimits.*", Rule::Replace),
    ("models.*.runtime_flags", Rule::Replace),
    ("services.*.environment", Rule::KeyValues),
    ("services.*.labels", Rule::KeyValues),
    ("services.*.annotations", Rule::KeyValues),
    ("services.*.sysctls", Rule::KeyValues),
    ("services.*.build.args", Rule::KeyValues),
    ("services.*.build.labels", Rule::KeyValues),
    ("services.*.build.additional_contexts", Rule::KeyValues),
    ("services.*.deploy.labels", Rule::KeyValues),
    ("networks.*.labels", Rule::KeyValues),
    ("volumes.*.labels", Rule::KeyValues),
    ("configs.*.labels", Rule::KeyValues),
    ("secrets.*.labels", Rule::KeyValues),
    ("services.*.extra_hosts", Rule::Hosts),
    ("services.*.extra_hosts.*", UNIQUE_VALUES),
    ("services.*.build.extra_hosts", Rule::Hosts),
    ("services.*.build.extra_hosts.*", UNIQUE_VALUES),
    ("services.*.networks", Rule::ToMap(Short::Null)),
    ("services.*.models", Rule::ToMap(Short::Null)),
    ("services.*.depends_on", Rule::ToMap(Short::DependsOn)),
    ("services.*.build", Rule::Wrap("context")),
    ("services.*.extends", Rule::Wrap("service")),
    ("services.*.logging", Rule::Logging),
    ("services.*.ports", Rule::Unique(port_key)),
    ("services.*.volumes", Rule::Unique(volume_key)),
    ("services.*.secrets", Rule::Unique(secret_key)),
    ("services.*.configs", Rule::Unique(config_key)),
    ("services.*.devices", Rule::Unique(device_key)),
    ("services.*.links", Rule::Unique(link_key)),
    ("services.*.env_file", Rule::Unique(path_key)),
    ("services.*.label_file", Rule::Unique(path_key)),
    (
        "services.*.blkio_config.device_read_bps",
        Rule::Unique(path_key),
    ),
    (
        "services.*.blkio_config.device_read_iops",
        Rule::Unique(path_key),
    ),
    (
        "services.*.blkio_config.device_write_bps",
        Rule::Unique(path_key),
    ),
    (
        "services.*.blkio_config.device_write_iops",
        Rule::Unique(path_key),
    ),
    (
        "services.*.blkio_config.weight_device",
        Rule::Unique(path_key),
    ),
    ("networks.*.ipam.config", Rule::Unique(subnet_key)),
    ("services.*.cap_add", UNIQUE_VALUES),
    ("services.*.cap_drop", UNIQUE_VALUES),
    ("services.*.device_cgroup_rules", UNIQUE_VALUES),
    ("services.*.dns", UNIQUE_VALUES),
    ("services.*.dns_opt", UNIQUE_VALUES),
    ("services.*.dns_search", UNIQUE_VALUES),
    ("services.*.expose", UNIQUE_VALUES),
    ("services.*.external_links", UNIQUE_VALUES),
    ("services.*.group_add", UNIQUE_VALUES),
    ("services.*.profiles", UNIQUE_VALUES),
    ("services.*.security_opt", UNIQUE_VALUES),
    ("services.*.tmpfs", UNIQUE_VALUES),
    ("services.*.volumes_from", UNIQUE_VALUES),
    ("services.*.networks.*.aliases", UNIQUE_VALUES),
    ("services.*.networks.*.link_local_ips", UNIQUE_VALUES),
    ("services.*.build.tags", UNIQUE_VALUES),
    ("services.*.build.platforms", UNIQUE_VALUES),
    ("services.*.build.cache_from", UNIQUE_VALUES),
    ("services.*.build.cache_to", UNIQUE_VALUES),
];

/// Path segment standing for "an item of the sequence"; `*` does not match it.
const ITEM: &str = "[]";

fn rule_for(path: &[String]) -> Rule {
    RULES
        .iter()
        .find(|(pattern, _)| path_matches(pattern, path))
        .map_or(Rule::Merge, |&(_, rule)| rule)
}

fn path_matches(pattern: &str, path: &[String]) -> bool {
    let mut segs = pattern.split('.');
    let all = path.iter().all(|key| {
        segs.next()
            .is_some_and(|s| s == key || (s == "*" && key != ITEM))
    });
    all && segs.next().is_none()
}

/// Merge `over` onto `base` (absent when only the override sets the key);
/// `None` when the result is that the key goes away (`!reset`).
fn merge_at(path: &[String], base: Option<Node>, over: Node) -> Option<Node> {
    match over.tag {
        Some(Tag::Reset) => return None,
        Some(Tag::Override) => return Some(cleaned(over)),
        None => {}
    }
    let Some(base) = base else {
        return Some(cleaned(over));
    };
    Some(match rule_for(path) {
        Rule::Merge => merge_default(path, base, over),
        Rule::Replace => cleaned(over),
        Rule::KeyValues => merge_default(path, key_values(base), key_values(over)),
        Rule::Hosts => merge_default(path, hosts(base), hosts(over)),
        Rule::ToMap(short) => {
            merge_default(path, names_to_map(base, short), names_to_map(over, short))
        }
        Rule::Wrap(key) => merge_default(path, wrap(base, key), wrap(over, key)),
        Rule::Logging => merge_logging(path, base, over),
        Rule::Unique(key) => merge_unique(path, promote(base), promote(over), key),
    })
}

/// A value taken over as is: its own resets applied, its tags gone.
fn cleaned(mut node: Node) -> Node {
    strip_resets(&mut node);
    node
}

fn rebuilt(value: Value, pos: Pos, key_pos: Option<Pos>) -> Node {
    Node {
        value,
        pos,
        key_pos,
        tag: None,
    }
}

fn merge_default(path: &[String], base: Node, over: Node) -> Node {
    let Node {
        value,
        pos,
        key_pos,
        ..
    } = base;
    let value = match (value, over.value) {
        (Value::Map(b), Value::Map(o)) => Value::Map(merge_maps(path, b, o)),
        (Value::Seq(mut b), Value::Seq(o)) => {
            b.extend(o.into_iter().filter_map(|item| merge_at(path, None, item)));
            Value::Seq(b)
        }
        // An empty value adds nothing to a collection.
        (value @ (Value::Map(_) | Value::Seq(_)), Value::Null) => value,
        (_, value) => return cleaned(rebuilt(value, over.pos, over.key_pos)),
    };
    rebuilt(value, pos, key_pos)
}

fn merge_maps(
    path: &[String],
    mut base: IndexMap<String, Node>,
    over: IndexMap<String, Node>,
) -> IndexMap<String, Node> {
    for (key, node) in over {
        let child = child_path(path, &key);
        match base.get_index_of(&key) {
            Some(i) => {
                let slot = &mut base[i];
                let inherited = std::mem::replace(slot, Node::new(Value::Null, slot.pos.clone()));
                match merge_at(&child, Some(inherited), node) {
                    Some(merged) => base[i] = merged,
                    None => {
                        base.shift_remove_index(i);
                    }
                }
            }
            None => {
                if let Some(added) = merge_at(&child, None, node) {
                    base.insert(key, added);
                }
            }
        }
    }
    base
}

fn child_path(path: &[String], key: &str) -> Vec<String> {
    let mut child = Vec::with_capacity(path.len() + 1);
    child.extend_from_slice(path);
    child.push(key.to_string());
    child
}

fn merge_logging(path: &[String], base: Node, over: Node) -> Node {
    let driver = |n: &Node| {
        n.get("driver")
            .and_then(Node::as_scalar_text)
            .map(str::to_string)
    };
    match (driver(&base), driver(&over)) {
        (Some(b), Some(o)) if b != o => cleaned(over),
        _ => merge_default(path, base, over),
    }
}

fn merge_unique(path: &[String], base: Node, over: Node, key: KeyFn) -> Node {
    if !matches!((&base.value, &over.value), (Value::Seq(_), Value::Seq(_))) {
        return merge_default(path, base, over);
    }
    let (Value::Seq(b), Value::Seq(o)) = (base.value, over.value) else {
        unreachable!("both sides were just checked to be sequences");
    };
    let mut seq = UniqueSeq {
        path: child_path(path, ITEM),
        key,
        items: Vec::new(),
        index: HashMap::new(),
    };
    // The base goes through the same door: duplicates within one file collapse too.
    b.into_iter().chain(o).for_each(|item| seq.add(item));
    let items = seq.items.into_iter().flatten().collect();
    rebuilt(Value::Seq(items), base.pos, base.key_pos)
}

/// A sequence being built whose items are unique by `key`.
struct UniqueSeq {
    path: Vec<String>,
    key: KeyFn,
    /// `None` where an item was removed by a later `!reset` one.
    items: Vec<Option<Node>>,
    index: HashMap<String, usize>,
}

impl UniqueSeq {
    fn add(&mut self, item: Node) {
        let key = (self.key)(&item);
        if let Some(&i) = key.as_ref().and_then(|k| self.index.get(k)) {
            let earlier = self.items[i].take();
            self.items[i] = merge_at(&self.path, earlier, item);
        } else if let Some(node) = merge_at(&self.path, None, item) {
            if let Some(key) = key {
                self.index.insert(key, self.items.len());
            }
            self.items.push(Some(node));
        }
    }
}

/// `[A=1, B]` as `{A: "1", B: null}`; anything else unchanged.
fn key_values(node: Node) -> Node {
    seq_to_map(node, |text, pos| match text.split_once('=') {
        Some((k, v)) => (k.to_string(), Node::string(v, pos.clone())),
        None => (text.to_string(), Node::new(Value::Null, pos.clone())),
    })
}

/// `[front, back]` as `{front: …, back: …}`; anything else unchanged.
fn names_to_map(node: Node, short: Short) -> Node {
    seq_to_map(node, |text, pos| (text.to_string(), short.expand(pos)))
}

impl Short {
    fn expand(self, pos: &Pos) -> Node {
        match self {
            Short::Null => Node::new(Value::Null, pos.clone()),
            Short::DependsOn => {
                let mut required = Node::new(plain("true"), pos.clone());
                let mut condition = Node::string("service_started", pos.clone());
                required.key_pos = Some(pos.clone());
                condition.key_pos = Some(pos.clone());
                let map = IndexMap::from([
                    ("condition".to_string(), condition),
                    ("required".to_string(), required),
                ]);
                Node::new(Value::Map(map), pos.clone())
            }
        }
    }
}

fn plain(text: &str) -> Value {
    Value::Scalar(Scalar {
        text: text.to_string(),
        plain: true,
    })
}

/// A sequence of scalars as a mapping, each item giving one entry; an item's tag
/// moves to its value, so `- !reset FOO` removes `FOO`. A later item for the same
/// key wins. Nodes that are not sequences of scalars come back unchanged.
fn seq_to_map(node: Node, entry: impl Fn(&str, &Pos) -> (String, Node)) -> Node {
    let Some(items) = node.as_seq() else {
        return node;
    };
    if !items.iter().all(|i| i.as_scalar_text().is_some()) {
        return node;
    }
    let mut map = IndexMap::new();
    for item in items {
        let (key, mut value) = entry(item.as_scalar_text().unwrap_or_default(), &item.pos);
        value.key_pos = Some(item.pos.clone());
        value.tag = item.tag;
        map.insert(key, value);
    }
    rebuilt(Value::Map(map), node.pos, node.key_pos)
}

/// `extra_hosts` as a mapping of host to its sequence of addresses: one host may
/// have several (`[a=1.2.3.4, a=4.3.2.1]`), and their order matters.
fn hosts(node: Node) -> Node {
    let Some(items) = node.as_seq() else {
        return node;
    };
    let entries: Option<Vec<_>> = items
        .iter()
        .map(|i| i.as_scalar_text().and_then(split_host).map(|hi| (hi, i)))
        .collect();
    let Some(entries) = entries else {
        return node;
    };
    let mut map: IndexMap<String, Node> = IndexMap::new();
    for ((host, ip), item) in entries {
        let mut address = Node::string(ip, item.pos.clone());
        address.tag = item.tag;
        let addresses = map.entry(host.to_string()).or_insert_with(|| {
            let mut seq = Node::new(Value::Seq(Vec::new()), item.pos.clone());
            seq.key_pos = Some(item.pos.clone());
            seq
        });
        if let Value::Seq(list) = &mut addresses.value {
            list.push(address);
        }
    }
    rebuilt(Value::Map(map), node.pos.clone(), node.key_pos.clone())
}

/// `host=ip`, or the older `host:ip` (the first `:` separates, so IPv6 works).
fn split_host(entry: &str) -> Option<(&str, &str)> {
    entry.split_once('=').or_else(|| entry.split_once(':'))
}

/// A scalar as a mapping with the single key `key`; anything else unchanged.
fn wrap(node: Node, key: &str) -> Node {
    if !matches!(node.value, Value::Scalar(_)) {
        return node;
    }
    let (pos, key_pos) = (node.pos.clone(), node.key_pos.clone());
    let mut inner = node;
    inner.key_pos = Some(inner.pos.clone());
    let map = IndexMap::from([(key.to_string(), inner)]);
    rebuilt(Value::Map(map), pos, key_pos)
}

/// A scalar as a sequence of one (`dns: 8.8.8.8`); anything else unchanged.
fn promote(node: Node) -> Node {
    if !matches!(node.value, Value::Scalar(_)) {
        return node;
    }
    let (pos, key_pos) = (node.pos.clone(), node.key_pos.clone());
    let mut item = node;
    item.key_pos = None;
    rebuilt(Value::Seq(vec![item]), pos, key_pos)
}

fn text_key(node: &Node) -> Option<String> {
    node.as_scalar_text().map(str::to_string)
}

fn field(node: &Node, name: &str) -> Option<String> {
    node.get(name).and_then(text_key)
}

/// `env_file`, `label_file`, `blkio_config` entries: the path, short or long form.
fn path_key(node: &Node) -> Option<String> {
    text_key(node).or_else(|| field(node, "path"))
}

fn subnet_key(node: &Node) -> Option<String> {
    field(node, "subnet")
}

/// `service`, `service:alias` or `service=alias`: one link per service.
fn link_key(node: &Node) -> Option<String> {
    let text = node.as_scalar_text()?;
    Some(text.split([':', '=']).next().unwrap_or(text).to_string())
}

/// `/dev/host[:/dev/container[:perms]]` or long form: unique by container path.
fn device_key(node: &Node) -> Option<String> {
    let Some(text) = node.as_scalar_text() else {
        return field(node, "target").or_else(|| field(node, "source"));
    };
    let mut parts = text.split(':');
    let source = parts.next().unwrap_or(text);
    Some(parts.next().unwrap_or(source).to_string())
}

/// Volumes are unique by container path.
fn volume_key(node: &Node) -> Option<String> {
    match node.as_scalar_text() {
        Some(spec) => Some(volume_target(spec)),
        None => field(node, "target"),
    }
}

/// The container path of a short volume spec: `[source:]target[:mode]`, where a
/// Windows source may start with a drive (`C:\data:/data`).
fn volume_target(spec: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for part in spec.split(':') {
        match parts.last_mut() {
            Some(drive) if is_drive(drive) && part.starts_with('\\') => {
                drive.push(':');
                drive.push_str(part);
            }
            _ => parts.push(part.to_string()),
        }
    }
    parts.get(1).or(parts.first()).cloned().unwrap_or_default()
}

fn is_drive(part: &str) -> bool {
    part.len() == 1 && part.bytes().all(|b| b.is_ascii_alphabetic())
}

/// Secrets are unique by mount path, which defaults to `/run/secrets/<source>`.
fn secret_key(node: &Node) -> Option<String> {
    mount_key(node, "/run/secrets/")
}

/// Configs are unique by mount path, which defaults to `/<source>`.
fn config_key(node: &Node) -> Option<String> {
    mount_key(node, "/")
}

fn mount_key(node: &Node, dir: &str) -> Option<String> {
    let (source, target) = match node.as_scalar_text() {
        Some(text) => (Some(text.to_string()), None),
        None => (field(node, "source"), field(node, "target")),
    };
    match target {
        Some(target) if target.starts_with('/') => Some(target),
        Some(target) => Some(format!("{dir}{target}")),
        None => source.map(|s| format!("{dir}{s}")),
    }
}

/// Ports are unique by (host ip, published, target, protocol), short or long form.
fn port_key(node: &Node) -> Option<String> {
    if let Some(spec) = node.as_scalar_text() {
        return Some(short_port_key(spec));
    }
    let ip = field(node, "host_ip").unwrap_or_default();
    let published = field(node, "published").unwrap_or_default();
    let target = field(node, "target")?;
    let protocol = field(node, "protocol").unwrap_or_else(|| "tcp".into());
    Some(port_key_of(&ip, &published, &target, &protocol))
}

/// `[[ip:]published:]target[/protocol]`, the ip possibly bracketed (`[::1]:80:80`).
fn short_port_key(spec: &str) -> String {
    let (rest, protocol) = spec.rsplit_once('/').unwrap_or((spec, "tcp"));
    let (bracketed, rest) = match rest.strip_prefix('[').and_then(|r| r.split_once("]:")) {
        Some((ip, rest)) => (Some(ip), rest),
        None => (None, rest),
    };
    let mut parts: Vec<&str> = rest.split(':').collect();
    let target = parts.pop().unwrap_or_default();
    let published = parts.pop().unwrap_or_default();
    let ip = bracketed.map_or_else(|| parts.join(":"), str::to_string);
    port_key_of(&ip, published, target, protocol)
}

fn port_key_of(ip: &str, published: &str, target: &str, protocol: &str) -> String {
    format!(
        "{ip}|{published}|{target}|{}",
        protocol.to_ascii_lowercase()
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::{Value as J, json};

    use super::*;
    use crate::yaml::parse;

    fn doc(path: &str, text: &str) -> Node {
        let mut docs = parse(path, text).unwrap_or_else(|e| panic!("{path}: {e:?}"));
        if docs.is_empty() {
            return Node::new(Value::Null, Pos::synthetic(path));
        }
        docs.remove(0)
    }

    fn merged(base: &str, over: &str) -> Node {
        merge(doc("base.yml", base), doc("over.yml", over))
    }

    fn web(node: &Node) -> J {
        node.to_json()["services"]["web"].clone()
    }

    fn cases_dir() -> PathBuf {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/compose-cases"
        ))
    }

    /// Dict-like attributes, compared in mapping form with string values.
    const KEY_VALUE_PATHS: &[&str] = &[
        "services.*.environment",
        "services.*.labels",
        "services.*.annotations",
        "services.*.sysctls",
        "services.*.build.args",
        "services.*.build.labels",
        "services.*.build.additional_contexts",
        "services.*.deploy.labels",
        "networks.*.labels",
        "volumes.*.labels",
        "configs.*.labels",
        "secrets.*.labels",
    ];

    /// `extra_hosts`: compared as host → addresses in order (hosts in any order).
    const HOST_PATHS: &[&str] = &["services.*.extra_hosts", "services.*.build.extra_hosts"];

    fn for_each_at(value: &mut J, path: &[&str], f: fn(&mut J)) {
        let Some((first, rest)) = path.split_first() else {
            return f(value);
        };
        let J::Object(map) = value else { return };
        if *first == "*" {
            map.values_mut().for_each(|v| for_each_at(v, rest, f));
        } else if let Some(v) = map.get_mut(*first) {
            for_each_at(v, rest, f);
        }
    }

    fn as_text(value: &J) -> String {
        match value {
            J::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    fn canonical_key_values(value: &mut J) {
        let entries: serde_json::Map<String, J> = match value {
            J::Array(items) => items
                .iter()
                .map(|i| match as_text(i).split_once('=') {
                    Some((k, v)) => (k.to_string(), J::String(v.to_string())),
                    None => (as_text(i), J::Null),
                })
                .collect(),
            J::Object(map) => map
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        if v.is_null() {
                            J::Null
                        } else {
                            J::String(as_text(v))
                        },
                    )
                })
                .collect(),
            _ => return,
        };
        *value = J::Object(entries);
    }

    fn canonical_hosts(value: &mut J) {
        let mut hosts = serde_json::Map::new();
        let mut add = |host: &str, ip: String| {
            let list = hosts.entry(host).or_insert_with(|| json!([]));
            list.as_array_mut().expect("array").push(J::String(ip));
        };
        match value {
            J::Array(items) => items.iter().map(as_text).for_each(|entry| {
                let (host, ip) = entry
                    .split_once('=')
                    .or_else(|| entry.split_once(':'))
                    .unwrap_or((&entry, ""));
                add(host, ip.to_string());
            }),
            J::Object(map) => map.iter().for_each(|(host, ips)| match ips {
                J::Array(ips) => ips.iter().for_each(|ip| add(host, as_text(ip))),
                ip => add(host, as_text(ip)),
            }),
            _ => return,
        }
        *value = J::Object(hosts);
    }

    fn canonical(mut value: J) -> J {
        for path in KEY_VALUE_PATHS {
            let path: Vec<&str> = path.split('.').collect();
            for_each_at(&mut value, &path, canonical_key_values);
        }
        for path in HOST_PATHS {
            let path: Vec<&str> = path.split('.').collect();
            for_each_at(&mut value, &path, canonical_hosts);
        }
        value
    }

    /// Run one case; `Err` says why it fails.
    fn run_case(id: &str) -> Result<(), String> {
        let dir = cases_dir().join("merge").join(id);
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).map_err(|e| format!("{name}: {e}"))
        };
        let (base, over, want) = (
            read("base.yaml")?,
            read("override.yaml")?,
            read("want.yaml")?,
        );
        let got = canonical(merge(doc("base.yaml", &base), doc("override.yaml", &over)).to_json());
        let want = canonical(doc("want.yaml", &want).to_json());
        if got == want {
            Ok(())
        } else {
            Err(format!("got {got}\n  want {want}"))
        }
    }

    #[test]
    fn every_case_docker_compose_accepts_merges_as_compose_does() {
        let index = cases_dir().join("merge.json");
        let text = std::fs::read_to_string(&index)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", index.display()));
        let index: J = serde_json::from_str(&text).expect("merge.json is JSON");
        let ids: Vec<&str> = index["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .filter(|c| c["oracle_rc"] == 0)
            .map(|c| c["id"].as_str().expect("id"))
            .collect();
        assert!(ids.len() >= 56, "only {} cases with oracle_rc 0", ids.len());
        let failures: Vec<String> = ids
            .iter()
            .filter_map(|id| run_case(id).err().map(|why| format!("{id}: {why}")))
            .collect();
        assert!(
            failures.is_empty(),
            "{} of {} cases fail:\n{}",
            failures.len(),
            ids.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn ports_are_unique_by_published_and_target() {
        let base = "services:\n  web:\n    ports:\n      - '8080:80'\n      - '127.0.0.1:9000:9000'\n      - target: 443\n        published: 8443\n";
        let over = "services:\n  web:\n    ports:\n      - '8080:80'\n      - '9000:9000'\n      - '8443:443'\n      - '8080:80/udp'\n      - 80\n";
        let ports = web(&merged(base, over))["ports"].clone();
        assert_eq!(
            ports,
            json!([
                "8080:80",
                "127.0.0.1:9000:9000",
                "8443:443",
                "9000:9000",
                "8080:80/udp",
                80
            ])
        );
    }

    #[test]
    fn volumes_are_unique_by_container_path_and_merge_in_place() {
        let base = "services:\n  web:\n    volumes:\n      - data:/data\n      - type: bind\n        source: ./a\n        target: /a\n      - /cache\n";
        let over = "services:\n  web:\n    volumes:\n      - other:/data:ro\n      - type: bind\n        target: /a\n        read_only: true\n";
        let volumes = web(&merged(base, over))["volumes"].clone();
        let bind = json!({"type": "bind", "source": "./a", "target": "/a", "read_only": true});
        assert_eq!(volumes, json!(["other:/data:ro", bind, "/cache"]));
    }

    #[test]
    fn commands_entrypoints_and_healthcheck_tests_are_replaced_not_appended() {
        let base = "services:\n  web:\n    command: [a, b]\n    entrypoint: [sh, -c]\n    healthcheck:\n      test: [CMD, a]\n      retries: 3\n";
        let over = "services:\n  web:\n    command: [c]\n    entrypoint: bash\n    healthcheck:\n      test: [CMD, b]\n";
        let got = web(&merged(base, over));
        assert_eq!(got["command"], json!(["c"]));
        assert_eq!(got["entrypoint"], json!("bash"));
        assert_eq!(
            got["healthcheck"],
            json!({"test": ["CMD", "b"], "retries": 3})
        );
    }

    #[test]
    fn environment_merges_by_name_whatever_form_each_file_uses() {
        let base = "services:\n  web:\n    environment: [A=1, B=2, C]\n";
        let over = "services:\n  web:\n    environment:\n      B: 3\n      D: x\n";
        let env = web(&merged(base, over))["environment"].clone();
        assert_eq!(env, json!({"A": "1", "B": 3, "C": null, "D": "x"}));
    }

    #[test]
    fn depends_on_in_list_form_merges_with_the_mapping_form() {
        let base =
            "services:\n  web:\n    depends_on:\n      db:\n        condition: service_healthy\n";
        let over = "services:\n  web:\n    depends_on: [cache]\n";
        let deps = web(&merged(base, over))["depends_on"].clone();
        let started = json!({"condition": "service_started", "required": true});
        assert_eq!(
            deps,
            json!({"db": {"condition": "service_healthy"}, "cache": started})
        );
    }

    #[test]
    fn reset_removes_inherited_values_and_override_replaces_them() {
        let base = "services:\n  web:\n    image: nginx\n    ports: ['80:80']\n    environment: [FOO=1, BAR=2]\n    labels: {a: '1'}\n    command: [run]\n";
        let over = "services:\n  web:\n    ports: !reset []\n    environment:\n      FOO: !reset null\n    labels: !override {b: '2'}\n    command: !reset null\n    dns: !reset []\n";
        let node = merged(base, over);
        let expected = json!({"image": "nginx", "environment": {"BAR": "2"}, "labels": {"b": "2"}});
        assert_eq!(web(&node), expected);
        assert!(no_tags(&node), "tags must not survive a merge: {node:?}");
    }

    #[test]
    fn resets_in_a_file_loaded_alone_are_removed() {
        let mut node = doc(
            "one.yml",
            "services:\n  web:\n    ports: [!reset '1:1', '2:2']\n    labels: !override {a: b}\n    dns: !reset 8.8.8.8\nx-a: !reset {}\n",
        );
        strip_resets(&mut node);
        assert_eq!(
            node.to_json(),
            json!({"services": {"web": {"ports": ["2:2"], "labels": {"a": "b"}}}})
        );
        assert!(no_tags(&node));
    }

    #[test]
    fn merged_nodes_keep_the_position_of_the_value_that_won() {
        let base = "services:\n  web:\n    image: a\n    environment:\n      A: '1'\n";
        let over = "services:\n  web:\n    image: b\n    environment:\n      B: '2'\n";
        let node = merged(base, over);
        let web = node
            .get("services")
            .and_then(|s| s.get("web"))
            .expect("web");
        let file = |n: &Node| n.pos.file.path.clone();
        assert_eq!(file(web.get("image").expect("image")), "over.yml");
        assert_eq!(
            web.get("image")
                .and_then(|n| n.key_pos.as_ref())
                .map(|p| p.line),
            Some(3)
        );
        let env = web.get("environment").expect("environment");
        assert_eq!(file(env), "base.yml");
        assert_eq!(file(env.get("A").expect("A")), "base.yml");
        assert_eq!(file(env.get("B").expect("B")), "over.yml");
        assert_eq!(file(web), "base.yml");
    }

    fn no_tags(node: &Node) -> bool {
        node.tag.is_none()
            && match &node.value {
                Value::Map(m) => m.values().all(no_tags),
                Value::Seq(s) => s.iter().all(no_tags),
                _ => true,
            }
    }
}
