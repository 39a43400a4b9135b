//! Writing YAML: block style, two-space indent, keys in their given order.
//!
//! Strings are written plain only when reading them back gives the same string
//! (never a number, bool or null, never YAML syntax); otherwise they are
//! double-quoted with JSON escapes, which YAML reads identically. So output of
//! [`to_yaml`] read by [`crate::yaml::parse`] gives back the same JSON value.

use serde_json::Value;

use crate::yaml::{Resolved, resolve_plain};

/// `value` as a YAML document.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(o) if !o.is_empty() => write_map(o, 0, &mut out),
        Value::Array(a) if !a.is_empty() => write_seq(a, 0, &mut out),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn write_map(map: &serde_json::Map<String, Value>, indent: usize, out: &mut String) {
    for (k, v) in map {
        out.push_str(&" ".repeat(indent));
        out.push_str(&string(k));
        out.push(':');
        write_child(v, indent, out);
    }
}

fn write_seq(seq: &[Value], indent: usize, out: &mut String) {
    for v in seq {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match v {
            Value::Object(o) if !o.is_empty() => {
                // First entry on the dash line, the rest aligned under it.
                let mut inner = String::new();
                write_map(o, indent + 2, &mut inner);
                out.push(' ');
                out.push_str(inner.trim_start());
            }
            _ => write_child(v, indent, out),
        }
    }
}

fn write_child(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(o) if !o.is_empty() => {
            out.push('\n');
            write_map(o, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            write_seq(a, indent + 2, out);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn string(s: &str) -> String {
    if is_plain_safe(s) {
        s.to_string()
    } else {
        Value::String(s.to_string()).to_string()
    }
}

fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let first_ok = first.is_ascii_alphanumeric() || matches!(first, '/' | '.' | '_' | '$');
    first_ok
        && !s.ends_with(' ')
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.ends_with(':')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || " _./:@=+,-$%^()~".contains(c))
        && matches!(resolve_plain(s), Resolved::Str(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_reads_back_as_the_same_value() {
        let v = serde_json::json!({
            "name": "p",
            "services": {"web": {
                "image": "nginx:1.27",
                "command": ["sh", "-c", "echo 'hi': # x"],
                "environment": {"A": "1", "B": "true", "C": "", "D": null, "E": "yes", "F": "0440"},
                "ports": [{"target": 80, "published": "8080", "protocol": "tcp"}],
                "labels": {},
                "x": [],
                "f": 1.5
            }}
        });
        let text = to_yaml(&v);
        let back = crate::yaml::parse("o.yml", &text)
            .unwrap()
            .remove(0)
            .to_json();
        assert_eq!(back, v, "{text}");
    }
}
