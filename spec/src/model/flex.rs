//! Lenient readers for the loosely typed scalars and short syntaxes of Compose.
//!
//! Values may come from interpolation, so numbers and booleans also arrive as
//! strings; Compose accepts both and so do we. Every reader goes through a
//! `serde_json::Value` and turns shape errors into lowercase messages. The
//! schema markers at the end describe exactly what these readers accept, so the
//! generated JSON Schema agrees with deserialization.

use std::borrow::Cow;
use std::marker::PhantomData;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Extension fields (`x-*`) kept verbatim.
pub type Extensions = IndexMap<String, Value>;

/// Deserializes a value, then converts it with `f`, reporting its error text.
pub(crate) fn via<'de, D, T>(
    d: D,
    f: impl FnOnce(Value) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Value::deserialize(d)?;
    f(value).map_err(D::Error::custom)
}

/// Applies `f` unless the value is null.
pub(crate) fn nullable<T>(
    v: Value,
    f: impl FnOnce(Value) -> Result<T, String>,
) -> Result<Option<T>, String> {
    match v {
        Value::Null => Ok(None),
        v => f(v).map(Some),
    }
}

/// Describes a value's kind for error messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Converts a long-form value into `T`, keeping serde's message.
pub(crate) fn long_form<T: DeserializeOwned>(v: Value) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| e.to_string())
}

/// Text of a scalar (string, number or boolean), as written.
pub(crate) fn scalar_text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!(
            "expected a string or a number, found {}",
            kind(other)
        )),
    }
}

/// A boolean given as `true`/`false` or as the strings Compose accepts.
pub(crate) fn to_bool(v: Value) -> Result<bool, String> {
    match &v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.as_str() {
            "true" | "True" | "TRUE" | "t" | "T" | "1" => Ok(true),
            "false" | "False" | "FALSE" | "f" | "F" | "0" => Ok(false),
            _ => Err(format!("invalid boolean {s:?}")),
        },
        other => Err(format!("expected a boolean, found {}", kind(other))),
    }
}

/// A signed integer given as a number or a numeric string.
pub(crate) fn to_i64(v: Value) -> Result<i64, String> {
    match &v {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| format!("expected an integer, found {n}")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("invalid integer {s:?}")),
        other => Err(format!("expected an integer, found {}", kind(other))),
    }
}

/// An unsigned integer given as a number or a numeric string.
pub(crate) fn to_u64(v: Value) -> Result<u64, String> {
    match &v {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("expected a non-negative integer, found {n}")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("invalid non-negative integer {s:?}")),
        other => Err(format!(
            "expected a non-negative integer, found {}",
            kind(other)
        )),
    }
}

/// A floating-point number given as a number or a numeric string.
pub(crate) fn to_f64(v: Value) -> Result<f64, String> {
    match &v {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("invalid number {n}")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("invalid number {s:?}")),
        other => Err(format!("expected a number, found {}", kind(other))),
    }
}

/// A file mode: a number (YAML already read `0440` as octal) or an octal string.
pub(crate) fn to_mode(v: Value) -> Result<u32, String> {
    match &v {
        Value::String(s) => u32::from_str_radix(s.trim().trim_start_matches("0o"), 8)
            .map_err(|_| format!("invalid file mode {s:?}")),
        _ => u32::try_from(to_u64(v)?).map_err(|_| "file mode out of range".to_string()),
    }
}

/// A list of strings; scalar items are turned into text.
pub(crate) fn to_string_list(v: Value) -> Result<Vec<String>, String> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.iter().map(scalar_text).collect(),
        other => Err(format!(
            "expected a list of strings, found {}",
            kind(&other)
        )),
    }
}

/// A single string or a list of strings.
pub(crate) fn to_string_or_list(v: Value) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(vec![s]),
        other => to_string_list(other),
    }
}

/// A `list_or_dict`: `["K=V", "K"]` or `{K: V}` with scalar or null values.
pub(crate) fn to_list_or_dict(v: Value) -> Result<IndexMap<String, Option<String>>, String> {
    match v {
        Value::Null => Ok(IndexMap::new()),
        Value::Array(items) => items
            .iter()
            .map(|i| scalar_text(i).map(|s| split_entry(&s)))
            .collect(),
        Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| nullable(v, |v| scalar_text(&v)).map(|v| (k, v)))
            .collect(),
        other => Err(format!(
            "expected a list or a mapping, found {}",
            kind(&other)
        )),
    }
}

/// Splits `KEY=VALUE` at the first `=`; a bare `KEY` has no value.
fn split_entry(s: &str) -> (String, Option<String>) {
    match s.split_once('=') {
        Some((k, v)) => (k.to_string(), Some(v.to_string())),
        None => (s.to_string(), None),
    }
}

/// A mapping whose values are scalars, kept as text.
pub(crate) fn to_scalar_map(v: Value) -> Result<IndexMap<String, String>, String> {
    match v {
        Value::Null => Ok(IndexMap::new()),
        Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| scalar_text(&v).map(|v| (k, v)))
            .collect(),
        other => Err(format!("expected a mapping, found {}", kind(&other))),
    }
}

/// A command: null, a list of strings, or a string split like a shell does.
pub(crate) fn to_command(v: Value) -> Result<Option<Vec<String>>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => shell_split(&s).map(Some),
        other => to_string_list(other).map(Some),
    }
}

/// Splits a command line into words, honouring quotes and backslashes.
pub fn shell_split(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => push_until_quote(&mut chars, word.get_or_insert_default(), s)?,
            '"' => push_double_quoted(&mut chars, word.get_or_insert_default(), s)?,
            '\\' => word.get_or_insert_default().extend(chars.next()),
            c => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

/// Copies a single-quoted run up to its closing quote.
fn push_until_quote(
    chars: &mut std::str::Chars<'_>,
    word: &mut String,
    all: &str,
) -> Result<(), String> {
    for c in chars.by_ref() {
        if c == '\'' {
            return Ok(());
        }
        word.push(c);
    }
    Err(format!(
        "invalid command {all:?}: unterminated single quote"
    ))
}

/// Copies a double-quoted run, where a backslash escapes `"`, `\`, `$` and `` ` ``.
fn push_double_quoted(
    chars: &mut std::str::Chars<'_>,
    word: &mut String,
    all: &str,
) -> Result<(), String> {
    while let Some(c) = chars.next() {
        match c {
            '"' => return Ok(()),
            '\\' => match chars.next() {
                Some(e @ ('"' | '\\' | '$' | '`')) => word.push(e),
                Some(e) => word.extend(['\\', e]),
                None => break,
            },
            c => word.push(c),
        }
    }
    Err(format!(
        "invalid command {all:?}: unterminated double quote"
    ))
}

/// Keeps only the `x-*` keys of a flattened remainder (and so drops `version`).
pub(crate) fn extensions<'de, D: Deserializer<'de>>(d: D) -> Result<Extensions, D::Error> {
    let all = IndexMap::<String, Value>::deserialize(d)?;
    Ok(all
        .into_iter()
        .filter(|(k, _)| k.starts_with("x-"))
        .collect())
}

/// A map of named entries where `name:` with no value means the default entry.
pub(crate) fn to_named_map<T: DeserializeOwned + Default>(
    v: Value,
) -> Result<IndexMap<String, T>, String> {
    match v {
        Value::Null => Ok(IndexMap::new()),
        Value::Object(map) => map.into_iter().map(|(k, v)| named_entry(k, v)).collect(),
        other => Err(format!("expected a mapping, found {}", kind(&other))),
    }
}

/// One entry of a named map, its error prefixed with its name.
fn named_entry<T: DeserializeOwned + Default>(
    key: String,
    v: Value,
) -> Result<(String, T), String> {
    let value = match v {
        Value::Null => T::default(),
        v => long_form(v).map_err(|e| format!("{key}: {e}"))?,
    };
    Ok((key, value))
}

/// Declares a `deserialize_with` function from a `Value` converter.
macro_rules! reader {
    ($(#[$m:meta])* $name:ident -> $t:ty = $conv:expr) => {
        $(#[$m])*
        pub(crate) fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
            via(d, $conv)
        }
    };
}

reader!(/// Optional lenient boolean.
    opt_bool -> Option<bool> = |v| nullable(v, to_bool));
reader!(/// Lenient boolean, null meaning false.
    bool_ -> bool = |v| nullable(v, to_bool).map(Option::unwrap_or_default));
reader!(/// Lenient boolean, null meaning true.
    bool_true -> bool = |v| nullable(v, to_bool).map(|b| b.unwrap_or(true)));
reader!(/// Optional lenient signed integer.
    opt_i64 -> Option<i64> = |v| nullable(v, to_i64));
reader!(/// Optional lenient unsigned integer.
    opt_u64 -> Option<u64> = |v| nullable(v, to_u64));
reader!(/// Optional lenient float.
    opt_f64 -> Option<f64> = |v| nullable(v, to_f64));
reader!(/// Optional file mode.
    opt_mode -> Option<u32> = |v| nullable(v, to_mode));
reader!(/// Optional scalar kept as text.
    opt_text -> Option<String> = |v| nullable(v, |v| scalar_text(&v)));
reader!(/// List of scalars kept as text.
    string_list -> Vec<String> = to_string_list);
reader!(/// String or list of strings.
    string_or_list -> Vec<String> = to_string_or_list);
reader!(/// `list_or_dict` as a map.
    list_or_dict -> IndexMap<String, Option<String>> = to_list_or_dict);
reader!(/// Map of scalars kept as text.
    scalar_map -> IndexMap<String, String> = to_scalar_map);
reader!(/// Command or entrypoint.
    command -> Option<Vec<String>> = to_command);

/// Declares an inline schema marker type.
macro_rules! schema_marker {
    ($(#[$m:meta])* $name:ident => $schema:tt) => {
        $(#[$m])*
        pub(crate) struct $name;
        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

schema_marker!(/// Boolean or string.
    BoolOrString => {"type": ["boolean", "string"]});
schema_marker!(/// Integer or string.
    IntOrString => {"type": ["integer", "string"]});
schema_marker!(/// Number or string.
    NumberOrString => {"type": ["number", "string"]});
schema_marker!(/// List of strings or numbers.
    ScalarList => {"type": "array", "items": {"type": ["string", "number"]}});
schema_marker!(/// String or list of strings.
    StringOrList => {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]});
schema_marker!(/// Compose `list_or_dict`.
ListOrDict => {"oneOf": [
    {"type": "object", "patternProperties": {".+": {"type": ["string", "number", "boolean", "null"]}}, "additionalProperties": false},
    {"type": "array", "items": {"type": "string"}}
]});
schema_marker!(/// Mapping of strings or numbers.
    ScalarMap => {"type": "object", "patternProperties": {"^.+$": {"type": ["string", "number", "boolean"]}}});
schema_marker!(/// Command: null, string or list of strings.
    CommandSchema => {"oneOf": [{"type": "null"}, {"type": "string"}, {"type": "array", "items": {"type": "string"}}]});

/// Key pattern of services, networks, volumes, configs, secrets and models.
pub(crate) const NAME_PATTERN: &str = "^[a-zA-Z0-9._-]+$";

/// Schema of a map of named entries of `T`, null entries allowed when `NULL`.
pub(crate) struct NamedMap<T, const NULL: bool>(PhantomData<T>);

impl<T: JsonSchema, const NULL: bool> JsonSchema for NamedMap<T, NULL> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("NamedMap_{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let item = generator.subschema_for::<T>();
        let entry = if NULL {
            json_schema!({"oneOf": [item, {"type": "null"}]})
        } else {
            item
        };
        json_schema!({"type": "object", "patternProperties": {NAME_PATTERN: entry}, "additionalProperties": false})
    }
}

/// Schema of a list of names or a map of named entries of `T` (null entries when `NULL`).
pub(crate) struct ListOrNamedMap<T, const NULL: bool>(PhantomData<T>);

impl<T: JsonSchema, const NULL: bool> JsonSchema for ListOrNamedMap<T, NULL> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("ListOrNamedMap_{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let map = NamedMap::<T, NULL>::json_schema(generator);
        json_schema!({"oneOf": [{"type": "array", "items": {"type": "string"}}, map]})
    }
}

/// A list of names (each meaning the default entry) or a map of named entries.
pub(crate) fn to_list_or_named_map<T>(
    v: Value,
    of_name: impl Fn() -> T,
) -> Result<IndexMap<String, T>, String>
where
    T: DeserializeOwned,
{
    match v {
        Value::Null => Ok(IndexMap::new()),
        Value::Array(items) => items
            .iter()
            .map(|i| scalar_text(i).map(|name| (name, of_name())))
            .collect(),
        Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| match v {
                Value::Null => Ok((k, of_name())),
                v => long_form(v).map(|t| (k, t)),
            })
            .collect(),
        other => Err(format!(
            "expected a list or a mapping, found {}",
            kind(&other)
        )),
    }
}

/// Schema of a list whose items are a string (short syntax) or the long form `T`.
pub(crate) struct ShortOrLongList<T>(PhantomData<T>);

impl<T: JsonSchema> JsonSchema for ShortOrLongList<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("ShortOrLongList_{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let item = generator.subschema_for::<T>();
        json_schema!({"type": "array", "items": {"oneOf": [{"type": "string"}, item]}})
    }
}

/// Schema of a string (short syntax) or the long form `T`.
pub(crate) struct ShortOrLong<T>(PhantomData<T>);

impl<T: JsonSchema> JsonSchema for ShortOrLong<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("ShortOrLong_{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let item = generator.subschema_for::<T>();
        json_schema!({"oneOf": [{"type": "string"}, item]})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shell_split_honours_quotes_and_escapes() {
        let words = shell_split(r#"sh -c 'echo "hi there"' "a b" c\ d"#).unwrap();
        assert_eq!(words, ["sh", "-c", r#"echo "hi there""#, "a b", "c d"]);
    }

    #[test]
    fn shell_split_reports_an_unterminated_quote() {
        let err = shell_split("echo 'oops").unwrap_err();
        assert!(err.contains("unterminated single quote"), "{err}");
    }

    #[test]
    fn list_or_dict_accepts_lists_and_maps_with_scalar_values() {
        let list = to_list_or_dict(json!(["A=1", "B", "C=x=y"])).unwrap();
        assert_eq!(list["A"], Some("1".into()));
        assert_eq!(list["B"], None);
        assert_eq!(list["C"], Some("x=y".into()));
        let map = to_list_or_dict(json!({"A": 1.5, "B": true, "C": null})).unwrap();
        assert_eq!(map["A"], Some("1.5".into()));
        assert_eq!(map["B"], Some("true".into()));
        assert_eq!(map["C"], None);
    }

    #[test]
    fn numbers_and_booleans_are_accepted_as_strings() {
        assert_eq!(to_u64(json!("3")), Ok(3));
        assert_eq!(to_f64(json!("0.5")), Ok(0.5));
        assert_eq!(to_bool(json!("true")), Ok(true));
        assert_eq!(to_mode(json!("0440")), Ok(0o440));
        assert_eq!(to_mode(json!(288)), Ok(0o440));
        assert!(to_u64(json!("three")).unwrap_err().contains("invalid"));
    }
}
