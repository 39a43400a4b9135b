//! Compose variable interpolation: `$VAR`, `${VAR}`, the `:-` / `-`, `:?` / `?`
//! and `:+` / `+` forms, nesting inside them, and the `$$` escape; plus the walk
//! that applies it to every scalar value of a [`Node`] tree.
//!
//! Invariants:
//! - only values are interpolated, never mapping keys;
//! - a scalar keeps its `plain` flag, so a plain `${PORT}` that becomes `8080`
//!   still types as an integer later; the one exception is a result that would
//!   type as null (`""`, `~`, `null`): a substituted value is a string in Compose,
//!   never a null;
//! - a scalar without `$` is not touched (no allocation), so big stacks stay cheap;
//! - defaults, alternatives and error messages are expanded only when used, as in
//!   Compose, so an unused branch cannot fail;
//! - every error in a tree is collected, not only the first one.

use crate::yaml::{Node, PathSeg, Pos, Resolved, Scalar, Value, path_to_string, resolve_plain};

/// Where variable values come from; `None` means the variable is unset.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Why a template could not be interpolated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    /// A `$` starts neither `$$`, a name nor a well-formed `${...}` expression.
    #[error("invalid interpolation format in {template:?} (escape a literal `$` as `$$`)")]
    InvalidFormat {
        /// The whole template the bad expression is part of.
        template: String,
    },
    /// `${VAR:?message}` or `${VAR?message}` with the variable missing.
    #[error("required variable {name} is missing a value{}", colon_prefixed(.message))]
    MissingRequired {
        /// The variable's name.
        name: String,
        /// The message written after `?`, itself interpolated; may be empty.
        message: String,
    },
}

fn colon_prefixed(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// An interpolation error at a node of a stack file.
///
/// The error is the whole point of the diagnostic, so it is shown in the message
/// rather than hidden behind `source()`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{pos}: {path}: {error}")]
pub struct InterpolateDiag {
    /// Where the scalar starts.
    pub pos: Pos,
    /// The scalar's path, as `services.web.environment.V`.
    pub path: String,
    /// What went wrong.
    pub error: InterpolateError,
}

/// Interpolate `template` with Compose semantics, reading variables from `lookup`.
pub fn substitute(template: &str, lookup: Lookup<'_>) -> Result<String, InterpolateError> {
    let mut out = String::with_capacity(template.len());
    expand_into(&mut out, template, template, lookup)?;
    Ok(out)
}

/// Interpolate every scalar value below `node` in place. `path` is the path of
/// `node` (it is restored on return); errors are appended to `errors` and leave
/// their scalar unchanged.
pub fn interpolate_node(
    node: &mut Node,
    path: &mut Vec<PathSeg>,
    lookup: Lookup<'_>,
    errors: &mut Vec<InterpolateDiag>,
) {
    match &mut node.value {
        Value::Null => {}
        Value::Scalar(scalar) => interpolate_scalar(scalar, &node.pos, path, lookup, errors),
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(PathSeg::Index(i));
                interpolate_node(item, path, lookup, errors);
                path.pop();
            }
        }
        Value::Map(entries) => {
            for (key, value) in entries.iter_mut() {
                path.push(PathSeg::Key(key.clone()));
                interpolate_node(value, path, lookup, errors);
                path.pop();
            }
        }
    }
}

fn interpolate_scalar(
    scalar: &mut Scalar,
    pos: &Pos,
    path: &[PathSeg],
    lookup: Lookup<'_>,
    errors: &mut Vec<InterpolateDiag>,
) {
    if !scalar.text.contains('$') {
        return;
    }
    match substitute(&scalar.text, lookup) {
        Ok(text) => {
            if scalar.plain && matches!(resolve_plain(&text), Resolved::Null) {
                scalar.plain = false;
            }
            scalar.text = text;
        }
        Err(error) => errors.push(InterpolateDiag {
            pos: pos.clone(),
            path: path_to_string(path),
            error,
        }),
    }
}

/// Append the expansion of `text` to `out`; `root` is the whole template, for errors.
fn expand_into(
    out: &mut String,
    text: &str,
    root: &str,
    lookup: Lookup<'_>,
) -> Result<(), InterpolateError> {
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        rest = match after.as_bytes().first() {
            Some(b'$') => {
                out.push('$');
                &after[1..]
            }
            Some(b'{') => {
                let close = closing_brace(after).ok_or_else(|| invalid(root))?;
                expand_braced(out, &after[1..close], root, lookup)?;
                &after[close + 1..]
            }
            Some(&b) if is_name_start(b) => {
                let len = name_len(after);
                if let Some(value) = lookup(&after[..len]) {
                    out.push_str(&value);
                }
                &after[len..]
            }
            // Compose keeps a `$` that starts no expression (`$}`, `a $ b`, `^re$`).
            _ => {
                out.push('$');
                after
            }
        };
    }
    out.push_str(rest);
    Ok(())
}

/// Index in `s` (which starts with `{`) of the `}` closing it. Every brace counts,
/// not only `${`, so a default like `{"json":1}` stays whole.
fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// What a `${NAME<op>arg}` expression does when the variable is missing.
#[derive(Clone, Copy)]
enum Operator {
    /// `-`: use the argument instead.
    Default,
    /// `?`: fail with the argument as message.
    Required,
    /// `+`: the argument when present, else nothing.
    Alternative,
}

/// Expand the body of `${...}` (without the braces) into `out`.
fn expand_braced(
    out: &mut String,
    body: &str,
    root: &str,
    lookup: Lookup<'_>,
) -> Result<(), InterpolateError> {
    let (name, spec) = body.split_at(name_len(body));
    if name.is_empty() {
        return Err(invalid(root));
    }
    if spec.is_empty() {
        if let Some(value) = lookup(name) {
            out.push_str(&value);
        }
        return Ok(());
    }
    let (operator, empty_is_missing, arg) = parse_operator(spec).ok_or_else(|| invalid(root))?;
    let present = lookup(name).filter(|v| !(empty_is_missing && v.is_empty()));
    match (operator, present) {
        (Operator::Default | Operator::Required, Some(value)) => out.push_str(&value),
        (Operator::Default, None) | (Operator::Alternative, Some(_)) => {
            expand_into(out, arg, root, lookup)?;
        }
        (Operator::Alternative, None) => {}
        (Operator::Required, None) => {
            let mut message = String::new();
            expand_into(&mut message, arg, root, lookup)?;
            return Err(InterpolateError::MissingRequired {
                name: name.to_string(),
                message,
            });
        }
    }
    Ok(())
}

/// Split `:-arg`, `-arg`, `:?arg`, ... into operator, whether an empty value
/// counts as missing (the `:` forms), and the argument.
fn parse_operator(spec: &str) -> Option<(Operator, bool, &str)> {
    let (colon, rest) = match spec.strip_prefix(':') {
        Some(rest) => (true, rest),
        None => (false, spec),
    };
    let operator = match rest.as_bytes().first()? {
        b'-' => Operator::Default,
        b'?' => Operator::Required,
        b'+' => Operator::Alternative,
        _ => return None,
    };
    Some((operator, colon, &rest[1..]))
}

fn invalid(root: &str) -> InterpolateError {
    InterpolateError::InvalidFormat {
        template: root.to_string(),
    }
}

fn is_name_start(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphabetic()
}

/// Length of the variable name `s` starts with (0 when it starts with none).
fn name_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    match bytes.first() {
        Some(&b) if is_name_start(b) => bytes
            .iter()
            .position(|&b| !(b == b'_' || b.is_ascii_alphanumeric()))
            .unwrap_or(bytes.len()),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sub(template: &str, pairs: &[(&str, &str)]) -> Result<String, InterpolateError> {
        let vars = env(pairs);
        substitute(template, &|name: &str| vars.get(name).cloned())
    }

    /// Our verdict on one case of `interpolation.json`, `None` when it passes.
    fn check_case(case: &serde_json::Value) -> Option<String> {
        let Some(template) = case["template"].as_str() else {
            return Some("the case has no template".into());
        };
        let vars: HashMap<String, String> = case["env"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let got = substitute(template, &|name: &str| vars.get(name).cloned());
        let want = case["oracle"]["value_unescaped"]
            .as_str()
            .or_else(|| case["expected"].as_str());
        match (want, case["expected_error_contains"].as_str(), &got) {
            (Some(want), _, Ok(got)) if got == want => None,
            (_, Some("Invalid template"), Err(InterpolateError::InvalidFormat { .. })) => None,
            (_, Some(text), Err(e @ InterpolateError::MissingRequired { .. }))
                if e.to_string().contains(text) =>
            {
                None
            }
            _ => Some(format!(
                "want {want:?} / error {:?}, got {got:?}",
                case["expected_error_contains"]
            )),
        }
    }

    #[test]
    fn all_compose_interpolation_cases_pass() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/compose-cases/interpolation.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let doc: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let cases = doc["cases"].as_array().expect("a `cases` array");
        assert!(!cases.is_empty(), "no cases in {}", path.display());
        if let Some(count) = doc["count"].as_u64() {
            assert_eq!(cases.len() as u64, count, "case count");
        }
        let failures: Vec<String> = cases
            .iter()
            .enumerate()
            .filter_map(|(i, case)| {
                let why = check_case(case)?;
                Some(format!(
                    "#{i} {} {:?}: {why}",
                    case["source"].as_str().unwrap_or("?"),
                    case["template"].as_str().unwrap_or("?")
                ))
            })
            .collect();
        assert!(
            failures.is_empty(),
            "{} of {} cases fail:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn nested_default_is_substituted() {
        assert_eq!(sub("${A:-${B:-x}}", &[]).unwrap(), "x");
        assert_eq!(sub("${A:-${B:-x}}", &[("B", "b")]).unwrap(), "b");
    }

    #[test]
    fn double_dollar_is_a_literal_dollar_and_is_not_expanded() {
        assert_eq!(sub("$${A} $$A", &[("A", "a")]).unwrap(), "${A} $A");
    }

    #[test]
    fn lone_dollar_not_followed_by_a_name_stays() {
        assert_eq!(
            sub("cost: 5$ or $1 or $-", &[]).unwrap(),
            "cost: 5$ or $1 or $-"
        );
    }

    #[test]
    fn colon_forms_treat_empty_as_missing_and_plain_forms_do_not() {
        let e = &[("E", "")];
        assert_eq!(sub("${E:-d}|${E-d}", e).unwrap(), "d|");
        assert_eq!(sub("${E:+a}|${E+a}", e).unwrap(), "|a");
        assert!(sub("${E:?m}", e).is_err());
        assert_eq!(sub("${E?m}", e).unwrap(), "");
    }

    #[test]
    fn required_variable_error_carries_the_interpolated_message() {
        let err = sub("${X:?need ${Y}}", &[("Y", "it")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "required variable X is missing a value: need it"
        );
        let err = sub("${X?}", &[]).unwrap_err();
        assert_eq!(err.to_string(), "required variable X is missing a value");
    }

    #[test]
    fn unused_branches_are_not_expanded_so_they_cannot_fail() {
        assert_eq!(sub("${A:-${B:?boom}}", &[("A", "a")]).unwrap(), "a");
        assert_eq!(sub("${A:+${B:?boom}}", &[]).unwrap(), "");
    }

    #[test]
    fn malformed_expressions_are_invalid_interpolation_format() {
        for bad in [
            "${", "${}", "${ }", "${VAR", "${1A}", "${A.B}", "${A:}", "${A:x}", "x ${A:-y",
        ] {
            let err = sub(bad, &[]).unwrap_err();
            assert!(
                matches!(err, InterpolateError::InvalidFormat { .. }),
                "{bad:?}: {err:?}"
            );
            assert!(
                err.to_string().starts_with("invalid interpolation format"),
                "{err}"
            );
        }
    }

    fn interpolate_text(text: &str, pairs: &[(&str, &str)]) -> (Node, Vec<InterpolateDiag>) {
        let vars = env(pairs);
        let mut node = crate::yaml::parse("stack.yml", text).unwrap().remove(0);
        let mut errors = Vec::new();
        interpolate_node(
            &mut node,
            &mut Vec::new(),
            &|n: &str| vars.get(n).cloned(),
            &mut errors,
        );
        (node, errors)
    }

    #[test]
    fn interpolate_node_collects_every_error_with_its_position_and_path() {
        let text = "services:\n  a:\n    image: ${A:?need a}\n  b:\n    image: nginx\n    environment:\n      V: \"${ }\"\n";
        let (_, errors) = interpolate_text(text, &[]);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].path, "services.a.image");
        assert_eq!((errors[0].pos.line, errors[0].pos.col), (3, 12));
        assert_eq!(
            errors[0].to_string(),
            "stack.yml:3:12: services.a.image: required variable A is missing a value: need a"
        );
        assert_eq!(errors[1].path, "services.b.environment.V");
        assert_eq!(errors[1].pos.line, 7);
        assert!(matches!(
            errors[1].error,
            InterpolateError::InvalidFormat { .. }
        ));
    }

    #[test]
    fn plain_scalars_keep_their_typing_after_substitution() {
        let (node, errors) = interpolate_text("p: ${PORT}\nq: \"${PORT}\"\n", &[("PORT", "8080")]);
        assert!(errors.is_empty());
        assert_eq!(node.to_json(), serde_json::json!({"p": 8080, "q": "8080"}));
    }

    #[test]
    fn a_plain_scalar_that_becomes_empty_is_an_empty_string_not_null() {
        let (node, _) = interpolate_text("v: ${UNSET}\n", &[]);
        assert_eq!(node.to_json(), serde_json::json!({"v": ""}));
    }

    #[test]
    fn mapping_keys_are_never_interpolated() {
        let (node, errors) = interpolate_text("${K}: ${K}\n", &[("K", "k")]);
        assert!(errors.is_empty());
        assert_eq!(node.to_json(), serde_json::json!({"${K}": "k"}));
    }

    #[test]
    fn scalars_without_a_dollar_are_not_reallocated() {
        let mut node = crate::yaml::parse("t.yml", "a: [x, y]\n")
            .unwrap()
            .remove(0);
        let before = node
            .at_path(&[PathSeg::Key("a".into()), PathSeg::Index(1)])
            .unwrap();
        let ptr = before.as_scalar_text().unwrap().as_ptr();
        let mut path = Vec::new();
        interpolate_node(&mut node, &mut path, &|_: &str| None, &mut Vec::new());
        let after = node
            .at_path(&[PathSeg::Key("a".into()), PathSeg::Index(1)])
            .unwrap();
        assert_eq!(after.as_scalar_text().unwrap().as_ptr(), ptr);
        assert!(path.is_empty(), "path is restored");
    }

    #[test]
    fn sequence_items_are_interpolated_with_indexed_paths() {
        let (node, errors) = interpolate_text("l: [\"$A\", \"${\"]\n", &[("A", "a")]);
        assert_eq!(node.to_json()["l"][0], "a");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "l[1]");
    }
}
