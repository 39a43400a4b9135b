//! The position-carrying YAML tree every loader stage works on.
//!
//! Compose interpolates each file, merges files, resolves `extends` and only then
//! types the result, so the loader needs a generic tree that remembers where every
//! value came from. This module owns that tree ([`Node`]) and the one place that
//! talks to the YAML parser.
//!
//! Invariants:
//! - scalars keep their source text; typing (YAML 1.2 core schema, plus the
//!   legacy `0440` octal that Compose accepts) happens when a value is read;
//! - anchors and aliases are expanded here, under a node budget so that alias
//!   bombs fail fast; merge keys (`<<`) are applied here;
//! - `!reset` and `!override` tags survive on the node for the merger;
//! - mapping keys are unique (a duplicate key is an error, as in Compose).

use std::fmt;
use std::sync::Arc;

use indexmap::IndexMap;
use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Most nodes one document may expand to; aliases are counted at their full size.
pub const NODE_BUDGET: usize = 1_000_000;

/// A stack file's text, shared by every node parsed from it.
#[derive(Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// Path as shown to the user.
    pub path: String,
    /// Whole text of the file.
    pub text: String,
}

impl SourceFile {
    /// Text of the 1-indexed `line`, without its newline.
    pub fn line_text(&self, line: u32) -> Option<&str> {
        self.text.lines().nth((line as usize).checked_sub(1)?)
    }
}

/// Where a node starts: file, 1-indexed line and 1-indexed column.
#[derive(Clone, Debug)]
pub struct Pos {
    /// The file the node was read from.
    pub file: Arc<SourceFile>,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub col: u32,
}

impl PartialEq for Pos {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.file, &other.file) && self.line == other.line && self.col == other.col
    }
}

impl Pos {
    /// A position for values that were not read from any file (command line, defaults).
    pub fn synthetic(what: &str) -> Pos {
        Pos {
            file: Arc::new(SourceFile {
                path: what.to_string(),
                text: String::new(),
            }),
            line: 0,
            col: 0,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file.path)
        } else {
            write!(f, "{}:{}:{}", self.file.path, self.line, self.col)
        }
    }
}

/// The loader tags Compose gives a meaning to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// `!reset`: drop the value inherited from earlier files.
    Reset,
    /// `!override`: replace the inherited value instead of merging with it.
    Override,
}

/// A value of the tree.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`, `~` or an empty value.
    Null,
    /// Any scalar, with its source text kept; see [`Node::resolve`].
    Scalar(Scalar),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order.
    Map(IndexMap<String, Node>),
}

/// A scalar and whether it was written plain (only plain scalars get typed).
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar {
    /// The scalar's text after YAML unescaping.
    pub text: String,
    /// Written without quotes or block style, so `8080` is a number and `true` a bool.
    pub plain: bool,
}

/// A scalar typed by the YAML 1.2 core schema.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolved<'a> {
    /// `null`, `~`, empty.
    Null,
    /// `true` / `false` (any capitalisation Compose accepts).
    Bool(bool),
    /// Decimal, `0x`, `0o` or legacy `0`-prefixed octal integer.
    Int(i64),
    /// Floating-point number, `.inf` and `.nan` included.
    Float(f64),
    /// Everything else.
    Str(&'a str),
}

/// A tree node: value, where it starts, where its key starts, and its tag.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Position of the value.
    pub pos: Pos,
    /// Position of the mapping key that holds this node, when it has one.
    pub key_pos: Option<Pos>,
    /// `!reset` / `!override`, when given.
    pub tag: Option<Tag>,
}

/// A YAML syntax or structure error, with where it happened.
#[derive(Clone, Debug, PartialEq)]
pub struct YamlError {
    /// Where the problem is.
    pub pos: Pos,
    /// What is wrong.
    pub message: String,
}

impl Node {
    /// A node holding `value` at `pos`.
    pub fn new(value: Value, pos: Pos) -> Node {
        Node {
            value,
            pos,
            key_pos: None,
            tag: None,
        }
    }

    /// A string scalar (quoted, so it is never typed as a number or bool).
    pub fn string(text: impl Into<String>, pos: Pos) -> Node {
        Node::new(
            Value::Scalar(Scalar {
                text: text.into(),
                plain: false,
            }),
            pos,
        )
    }

    /// The mapping, when this node is one.
    pub fn as_map(&self) -> Option<&IndexMap<String, Node>> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The mapping, mutably, when this node is one.
    pub fn as_map_mut(&mut self) -> Option<&mut IndexMap<String, Node>> {
        match &mut self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The sequence, when this node is one.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The scalar text, when this node is a scalar (whatever its type).
    pub fn as_scalar_text(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) => Some(&s.text),
            _ => None,
        }
    }

    /// The string, when this node is a scalar that types as a string.
    pub fn as_str(&self) -> Option<&str> {
        match self.resolve() {
            Some(Resolved::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// Child `key` of a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.get(key)
    }

    /// Whether the node is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self.resolve(), Some(Resolved::Null))
    }

    /// The type of a scalar (or of null); `None` for sequences and mappings.
    pub fn resolve(&self) -> Option<Resolved<'_>> {
        match &self.value {
            Value::Null => Some(Resolved::Null),
            Value::Scalar(s) if !s.plain => Some(Resolved::Str(&s.text)),
            Value::Scalar(s) => Some(resolve_plain(&s.text)),
            _ => None,
        }
    }

    /// Number of nodes in this subtree.
    pub fn size(&self) -> usize {
        1 + match &self.value {
            Value::Seq(s) => s.iter().map(Node::size).sum(),
            Value::Map(m) => m.values().map(Node::size).sum(),
            _ => 0,
        }
    }

    /// The JSON value of this tree, scalars typed.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Seq(s) => J::Array(s.iter().map(Node::to_json).collect()),
            Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
            _ => match self.resolve() {
                Some(Resolved::Bool(b)) => J::Bool(b),
                Some(Resolved::Int(i)) => J::from(i),
                Some(Resolved::Float(f)) => serde_json::Number::from_f64(f)
                    .map(J::Number)
                    .unwrap_or_else(|| J::String(self.as_scalar_text().unwrap_or_default().into())),
                Some(Resolved::Str(s)) => J::String(s.to_string()),
                _ => J::Null,
            },
        }
    }

    /// A tree with the value of `json`, every node at `pos`.
    pub fn from_json(json: &serde_json::Value, pos: &Pos) -> Node {
        use serde_json::Value as J;
        let value = match json {
            J::Null => Value::Null,
            J::Bool(b) => plain(b.to_string()),
            J::Number(n) => plain(n.to_string()),
            J::String(s) => Value::Scalar(Scalar {
                text: s.clone(),
                plain: false,
            }),
            J::Array(a) => Value::Seq(a.iter().map(|v| Node::from_json(v, pos)).collect()),
            J::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Node::from_json(v, pos)))
                    .collect(),
            ),
        };
        Node::new(value, pos.clone())
    }

    /// The node at a path of mapping keys and sequence indexes below this one.
    pub fn at_path<'a>(&'a self, path: &[PathSeg]) -> Option<&'a Node> {
        let mut node = self;
        for seg in path {
            node = match (seg, &node.value) {
                (PathSeg::Key(k), Value::Map(m)) => m.get(k.as_str())?,
                (PathSeg::Index(i), Value::Seq(s)) => s.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }
}

fn plain(text: String) -> Value {
    Value::Scalar(Scalar { text, plain: true })
}

/// One step of a path into the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSeg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// Render a path as Compose does in messages: `services.web.ports[0]`.
pub fn path_to_string(path: &[PathSeg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            PathSeg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            PathSeg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Type a plain scalar by the YAML 1.2 core schema, plus legacy octal (`0440`).
pub fn resolve_plain(text: &str) -> Resolved<'_> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        _ => {}
    }
    if let Some(i) = resolve_int(text) {
        return Resolved::Int(i);
    }
    if looks_like_float(text)
        && let Ok(f) = text.parse::<f64>()
    {
        return Resolved::Float(f);
    }
    Resolved::Str(text)
}

fn resolve_int(text: &str) -> Option<i64> {
    let (neg, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if body.is_empty() {
        return None;
    }
    let magnitude = if let Some(hex) = body.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = body.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()?
    } else if body.len() > 1 && body.starts_with('0') && body.bytes().all(|b| b.is_ascii_digit()) {
        i64::from_str_radix(&body[1..], 8).ok()?
    } else if body.bytes().all(|b| b.is_ascii_digit()) {
        body.parse::<i64>().ok()?
    } else {
        return None;
    };
    Some(if neg { -magnitude } else { magnitude })
}

fn looks_like_float(text: &str) -> bool {
    let body = text.trim_start_matches(['-', '+']);
    let mut digits = false;
    for (i, b) in body.bytes().enumerate() {
        match b {
            b'0'..=b'9' => digits = true,
            b'.' => {}
            b'e' | b'E' => return digits && i + 1 < body.len(),
            _ => return false,
        }
    }
    digits && body.contains('.')
}

/// Parse `text` (the content of `path`) into one tree. Several documents in one
/// file are returned in order; an empty file gives an empty list.
pub fn parse(path: &str, text: &str) -> Result<Vec<Node>, YamlError> {
    let file = Arc::new(SourceFile {
        path: path.to_string(),
        text: text.to_string(),
    });
    let mut builder = Builder {
        file,
        anchors: Vec::new(),
        budget: NODE_BUDGET,
        parser: Parser::new_from_str(text),
    };
    builder.documents()
}

struct Builder<'a> {
    file: Arc<SourceFile>,
    /// Anchored nodes by anchor id (ids start at 1; 0 means "no anchor").
    anchors: Vec<Option<Node>>,
    budget: usize,
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
}

impl<'a> Builder<'a> {
    fn pos(&self, span: &Span) -> Pos {
        Pos {
            file: self.file.clone(),
            line: span.start.line() as u32,
            col: span.start.col() as u32 + 1,
        }
    }

    fn next(&mut self) -> Result<(Event<'a>, Span), YamlError> {
        match self.parser.next_event() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(YamlError {
                pos: Pos {
                    file: self.file.clone(),
                    line: e.marker().line() as u32,
                    col: e.marker().col() as u32 + 1,
                },
                message: e.info().to_string(),
            }),
            None => Err(self.error_at_end("unexpected end of YAML stream")),
        }
    }

    fn error_at_end(&self, message: &str) -> YamlError {
        let line = self.file.text.lines().count().max(1) as u32;
        YamlError {
            pos: Pos {
                file: self.file.clone(),
                line,
                col: 1,
            },
            message: message.to_string(),
        }
    }

    fn documents(&mut self) -> Result<Vec<Node>, YamlError> {
        let mut docs = Vec::new();
        loop {
            let (ev, span) = self.next()?;
            match ev {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::StreamEnd => return Ok(docs),
                Event::DocumentStart(_) => {
                    self.anchors.clear();
                    let (ev, span) = self.next()?;
                    let node = self.node(ev, span)?;
                    docs.push(node);
                }
                other => {
                    return Err(YamlError {
                        pos: self.pos(&span),
                        message: format!("unexpected YAML event {other:?}"),
                    });
                }
            }
        }
    }

    fn spend(&mut self, n: usize, pos: &Pos) -> Result<(), YamlError> {
        self.budget = self.budget.checked_sub(n).ok_or_else(|| YamlError {
            pos: pos.clone(),
            message: format!(
                "document expands to more than {NODE_BUDGET} nodes (too many aliases)"
            ),
        })?;
        Ok(())
    }

    fn node(&mut self, ev: Event<'a>, span: Span) -> Result<Node, YamlError> {
        let pos = self.pos(&span);
        self.spend(1, &pos)?;
        let (node, anchor) = match ev {
            Event::Alias(id) => {
                let node = self
                    .anchors
                    .get(id)
                    .and_then(Option::as_ref)
                    .cloned()
                    .ok_or_else(|| YamlError {
                        pos: pos.clone(),
                        message: "alias refers to an unknown anchor".into(),
                    })?;
                self.spend(node.size(), &pos)?;
                let mut node = node;
                node.pos = pos;
                (node, 0)
            }
            Event::Scalar(text, style, anchor, tag) => {
                let (tag, forced_str) = tag_of(tag.as_deref());
                let quoted = style != ScalarStyle::Plain || forced_str;
                let value = if !quoted && resolve_plain(&text) == Resolved::Null {
                    Value::Null
                } else {
                    Value::Scalar(Scalar {
                        text: text.into_owned(),
                        plain: !quoted,
                    })
                };
                let mut node = Node::new(value, pos);
                node.tag = tag;
                (node, anchor)
            }
            Event::SequenceStart(anchor, tag) => {
                let mut items = Vec::new();
                loop {
                    let (ev, span) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(ev, span)?);
                }
                let mut node = Node::new(Value::Seq(items), pos);
                node.tag = tag_of(tag.as_deref()).0;
                (node, anchor)
            }
            Event::MappingStart(anchor, tag) => {
                let mut node = self.mapping(pos)?;
                node.tag = tag_of(tag.as_deref()).0;
                (node, anchor)
            }
            other => {
                return Err(YamlError {
                    pos,
                    message: format!("unexpected YAML event {other:?}"),
                });
            }
        };
        if anchor > 0 {
            if self.anchors.len() <= anchor {
                self.anchors.resize(anchor + 1, None);
            }
            self.anchors[anchor] = Some(node.clone());
        }
        Ok(node)
    }

    fn mapping(&mut self, pos: Pos) -> Result<Node, YamlError> {
        let mut map: IndexMap<String, Node> = IndexMap::new();
        let mut merges: Vec<Node> = Vec::new();
        loop {
            let (ev, span) = self.next()?;
            if matches!(ev, Event::MappingEnd) {
                break;
            }
            let key_pos = self.pos(&span);
            let key = self.node(ev, span)?;
            let key_text = match &key.value {
                Value::Scalar(s) => s.text.clone(),
                Value::Null => "null".to_string(),
                _ => {
                    return Err(YamlError {
                        pos: key_pos,
                        message: "mapping keys must be scalars".into(),
                    });
                }
            };
            let (ev, span) = self.next()?;
            let mut value = self.node(ev, span)?;
            if key_text == "<<" && matches!(&key.value, Value::Scalar(s) if s.plain) {
                merges.push(value);
                continue;
            }
            match map.entry(key_text) {
                indexmap::map::Entry::Occupied(o) => {
                    return Err(YamlError {
                        pos: key_pos,
                        message: format!("mapping key {:?} already defined", o.key()),
                    });
                }
                indexmap::map::Entry::Vacant(v) => {
                    value.key_pos = Some(key_pos);
                    v.insert(value);
                }
            }
        }
        for merge in merges {
            apply_merge_key(&mut map, merge)?;
        }
        Ok(Node::new(Value::Map(map), pos))
    }
}

/// `<<: *a` or `<<: [*a, *b]`: copy keys the mapping does not set itself; the
/// first source in the list wins over later ones.
fn apply_merge_key(map: &mut IndexMap<String, Node>, merge: Node) -> Result<(), YamlError> {
    let sources = match merge.value {
        Value::Map(_) => vec![merge],
        Value::Seq(items) => items,
        _ => {
            return Err(YamlError {
                pos: merge.pos,
                message: "merge key `<<` takes a mapping or a list of mappings".into(),
            });
        }
    };
    for source in sources {
        let Value::Map(entries) = source.value else {
            return Err(YamlError {
                pos: source.pos,
                message: "merge key `<<` takes a mapping or a list of mappings".into(),
            });
        };
        for (k, v) in entries {
            map.entry(k).or_insert(v);
        }
    }
    Ok(())
}

/// Our tag for `!reset` / `!override`, and whether the tag forces a string (`!!str`).
fn tag_of(tag: Option<&saphyr_parser::Tag>) -> (Option<Tag>, bool) {
    let Some(tag) = tag else {
        return (None, false);
    };
    match (tag.handle.as_str(), tag.suffix.as_str()) {
        ("!", "reset") => (Some(Tag::Reset), false),
        ("!", "override") => (Some(Tag::Override), false),
        (_, "str") | (_, "tag:yaml.org,2002:str") => (None, true),
        _ => (None, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        parse("t.yml", text).unwrap().remove(0)
    }

    #[test]
    fn scalars_are_typed_by_the_core_schema_and_legacy_octal() {
        let n = one("a: 8080\nb: yes\nc: true\nd: '8080'\ne: 0440\nf: 1.5\ng: ~\nh: 0x1F\n");
        let j = n.to_json();
        assert_eq!(j["a"], 8080);
        assert_eq!(j["b"], "yes");
        assert_eq!(j["c"], true);
        assert_eq!(j["d"], "8080");
        assert_eq!(j["e"], 0o440);
        assert_eq!(j["f"], 1.5);
        assert!(j["g"].is_null());
        assert_eq!(j["h"], 31);
    }

    #[test]
    fn positions_are_one_indexed_and_keys_have_their_own() {
        let n = one("services:\n  web:\n    image: nginx\n");
        let image = n
            .get("services")
            .unwrap()
            .get("web")
            .unwrap()
            .get("image")
            .unwrap();
        assert_eq!((image.pos.line, image.pos.col), (3, 12));
        let key = image.key_pos.as_ref().unwrap();
        assert_eq!((key.line, key.col), (3, 5));
        assert_eq!(image.pos.to_string(), "t.yml:3:12");
    }

    #[test]
    fn merge_keys_copy_only_missing_entries_first_source_wins() {
        let n = one("a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc:\n  <<: [*a, *b]\n  x: 0\n");
        let c = n.get("c").unwrap().to_json();
        assert_eq!(c, serde_json::json!({"x": 0, "y": 1, "z": 2}));
    }

    #[test]
    fn reset_and_override_tags_are_kept() {
        let n = one("a: !reset []\nb: !override {x: 1}\n");
        assert_eq!(n.get("a").unwrap().tag, Some(Tag::Reset));
        assert_eq!(n.get("b").unwrap().tag, Some(Tag::Override));
    }

    #[test]
    fn duplicate_keys_are_rejected_at_the_second_key() {
        let err = parse("t.yml", "a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!((err.pos.line, err.pos.col), (3, 1));
        assert!(err.message.contains("already defined"), "{}", err.message);
    }

    #[test]
    fn alias_bombs_fail_fast() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse("t.yml", &text).unwrap_err();
        assert!(err.message.contains("too many aliases"), "{}", err.message);
    }

    #[test]
    fn syntax_errors_point_into_the_file() {
        let err = parse("t.yml", "a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.line >= 1, "{err:?}");
    }
}
