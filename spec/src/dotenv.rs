//! `.env` and `env_file` parsing with Compose's rules, and the `format: raw`
//! variant (`docker run --env-file` rules: every value taken literally).
//!
//! Invariants:
//! - variables come back in file order; a later line for the same key replaces
//!   the value but keeps the key's first position;
//! - a bare `KEY` (no `=`) gives `None`: its value is taken from the environment
//!   by the caller, this module never reads the process environment;
//! - `${...}` in unquoted and double-quoted values is interpolated; the lookup
//!   wins over keys defined earlier in the same file (Compose gives the
//!   environment precedence over `.env`), and those earlier keys are visible;
//!   single-quoted values are literal;
//! - every error names the file and the 1-indexed line where its entry starts.

use std::iter::Zip;
use std::ops::RangeFrom;
use std::str::Lines;

use indexmap::IndexMap;

use crate::interpolate::{InterpolateError, Lookup, substitute};

/// The variables of an env file, in file order; `None` for a bare `KEY`.
pub type EnvVars = IndexMap<String, Option<String>>;

/// Why an env file could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DotenvError {
    /// A line with `=` but no name before it.
    #[error("{path}:{line}: missing variable name")]
    MissingName {
        /// The file, as shown to the user.
        path: String,
        /// 1-indexed line.
        line: u32,
    },
    /// A name with characters other than letters, digits, `_` and `.` (or, in a
    /// raw file, with whitespace).
    #[error("{path}:{line}: invalid variable name {name:?}")]
    InvalidName {
        /// The file, as shown to the user.
        path: String,
        /// 1-indexed line.
        line: u32,
        /// The name as written.
        name: String,
    },
    /// A quoted value whose closing quote never comes.
    #[error("{path}:{line}: unterminated quoted value of {name}")]
    UnterminatedQuote {
        /// The file, as shown to the user.
        path: String,
        /// 1-indexed line where the value starts.
        line: u32,
        /// The variable.
        name: String,
    },
    /// Something other than a comment after a closing quote.
    #[error("{path}:{line}: unexpected text after the closing quote of {name}")]
    TextAfterQuote {
        /// The file, as shown to the user.
        path: String,
        /// 1-indexed line where the value starts.
        line: u32,
        /// The variable.
        name: String,
    },
    /// Interpolating a value failed.
    #[error("{path}:{line}: failed to interpolate the value of {name}")]
    Interpolate {
        /// The file, as shown to the user.
        path: String,
        /// 1-indexed line where the value starts.
        line: u32,
        /// The variable.
        name: String,
        /// What was wrong with the value.
        #[source]
        source: InterpolateError,
    },
}

/// Parse an env file with Compose's rules; `lookup` resolves `${VAR}` in values
/// before the keys defined earlier in the file do.
pub fn parse_env_file(
    path_for_errors: &str,
    text: &str,
    lookup: Lookup<'_>,
) -> Result<EnvVars, DotenvError> {
    let mut parser = Parser {
        path: path_for_errors,
        lines: numbered_lines(text),
        vars: EnvVars::new(),
    };
    while let Some((line, number)) = parser.lines.next() {
        parser.statement(line, number, lookup)?;
    }
    Ok(parser.vars)
}

/// Parse a `format: raw` env file: `KEY=VALUE` lines taken literally (no quotes,
/// no interpolation, no trimming of the value), `#` comment lines and blank
/// lines skipped, a bare `KEY` gives `None`.
pub fn parse_env_file_raw(path_for_errors: &str, text: &str) -> Result<EnvVars, DotenvError> {
    let mut vars = EnvVars::new();
    for (line, number) in numbered_lines(text) {
        let statement = line.trim_start();
        if statement.is_empty() || statement.starts_with('#') {
            continue;
        }
        let (name, value) = match statement.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (statement.trim_end(), None),
        };
        let error = |name: &str| DotenvError::InvalidName {
            path: path_for_errors.to_string(),
            line: number,
            name: name.to_string(),
        };
        if name.is_empty() {
            return Err(missing_name(path_for_errors, number));
        }
        if name.contains(char::is_whitespace) {
            return Err(error(name));
        }
        vars.insert(name.to_string(), value);
    }
    Ok(vars)
}

type NumberedLines<'a> = Zip<Lines<'a>, RangeFrom<u32>>;

fn numbered_lines(text: &str) -> NumberedLines<'_> {
    text.strip_prefix('\u{feff}')
        .unwrap_or(text)
        .lines()
        .zip(1..)
}

fn missing_name(path: &str, line: u32) -> DotenvError {
    DotenvError::MissingName {
        path: path.to_string(),
        line,
    }
}

struct Parser<'a> {
    path: &'a str,
    lines: NumberedLines<'a>,
    vars: EnvVars,
}

impl<'a> Parser<'a> {
    /// Read the entry starting on `line` (and on following lines, for a quoted
    /// value that spans several).
    fn statement(
        &mut self,
        line: &'a str,
        number: u32,
        lookup: Lookup<'_>,
    ) -> Result<(), DotenvError> {
        let statement = line.trim_start();
        if statement.is_empty() || statement.starts_with('#') {
            return Ok(());
        }
        let statement = strip_export(statement);
        // `KEY: value` is accepted too, as Compose does.
        let Some(sep) = statement.find(['=', ':']) else {
            let name = self.name(statement.trim_end(), number)?;
            self.vars.insert(name, None);
            return Ok(());
        };
        let name = self.name(statement[..sep].trim_end(), number)?;
        let value = self.value(&name, &statement[sep + 1..], number, lookup)?;
        self.vars.insert(name, Some(value));
        Ok(())
    }

    fn name(&self, name: &str, number: u32) -> Result<String, DotenvError> {
        if name.is_empty() {
            return Err(missing_name(self.path, number));
        }
        if !name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
        {
            return Err(DotenvError::InvalidName {
                path: self.path.to_string(),
                line: number,
                name: name.to_string(),
            });
        }
        Ok(name.to_string())
    }

    /// The value after `=`: `raw` is the rest of the line, untrimmed.
    fn value(
        &mut self,
        name: &str,
        raw: &'a str,
        number: u32,
        lookup: Lookup<'_>,
    ) -> Result<String, DotenvError> {
        let body = raw.trim_start_matches([' ', '\t']);
        match body.chars().next() {
            Some(quote @ '"') => {
                let text = self.quoted(name, &body[1..], quote, number)?;
                self.expand(name, &text, number, lookup)
            }
            Some(quote @ '\'') => self.quoted(name, &body[1..], quote, number),
            _ => self.expand(name, strip_inline_comment(raw).trim(), number, lookup),
        }
    }

    /// The unescaped content of a quoted value whose opening quote ends just
    /// before `first`, reading further lines until the closing quote.
    fn quoted(
        &mut self,
        name: &str,
        first: &str,
        quote: char,
        number: u32,
    ) -> Result<String, DotenvError> {
        let mut out = String::new();
        let mut segment = first;
        loop {
            if let Some(tail) = scan_quoted(segment, quote, &mut out) {
                let tail = tail.trim();
                if tail.is_empty() || tail.starts_with('#') {
                    return Ok(out);
                }
                return Err(DotenvError::TextAfterQuote {
                    path: self.path.to_string(),
                    line: number,
                    name: name.to_string(),
                });
            }
            let Some((next, _)) = self.lines.next() else {
                return Err(DotenvError::UnterminatedQuote {
                    path: self.path.to_string(),
                    line: number,
                    name: name.to_string(),
                });
            };
            out.push('\n');
            segment = next;
        }
    }

    fn expand(
        &self,
        name: &str,
        text: &str,
        number: u32,
        lookup: Lookup<'_>,
    ) -> Result<String, DotenvError> {
        let vars = &self.vars;
        let both = |key: &str| lookup(key).or_else(|| vars.get(key).cloned().flatten());
        substitute(text, &both).map_err(|source| DotenvError::Interpolate {
            path: self.path.to_string(),
            line: number,
            name: name.to_string(),
            source,
        })
    }
}

/// `export KEY=value` is `KEY=value`; a key that merely starts with `export` is not.
fn strip_export(statement: &str) -> &str {
    match statement.strip_prefix("export") {
        Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
        _ => statement,
    }
}

/// An unquoted value ends at a `#` that follows whitespace (`a#b` keeps its `#`).
fn strip_inline_comment(raw: &str) -> &str {
    raw.match_indices('#')
        .find(|(i, _)| raw[..*i].ends_with([' ', '\t']))
        .map_or(raw, |(i, _)| &raw[..i])
}

/// Append the unescaped content of `segment` up to the closing `quote` to `out`;
/// the text after the quote, or `None` when the line ends first.
///
/// In double quotes `\n`, `\r`, `\t` are control characters, `\$` is a literal
/// `$` (kept as `$$` for the interpolation that follows) and `\x` is `x`. In
/// single quotes only `\'` is an escape.
fn scan_quoted<'s>(segment: &'s str, quote: char, out: &mut String) -> Option<&'s str> {
    let mut chars = segment.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == quote {
            return Some(&segment[i + 1..]);
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        match (quote == '\'', chars.next()) {
            // A backslash ending a line: the newline is kept either way.
            (false, None) => {}
            (true, None) => out.push('\\'),
            (true, Some((_, '\''))) => out.push('\''),
            (true, Some((_, other))) => {
                out.push('\\');
                out.push(other);
            }
            (false, Some((_, escaped))) => match escaped {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                '$' => out.push_str("$$"),
                other => out.push(other),
            },
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse(text: &str) -> EnvVars {
        parse_env_file("t.env", text, &no_env).unwrap()
    }

    fn value(text: &str, key: &str) -> Option<String> {
        parse(text).get(key).cloned().flatten()
    }

    fn err(text: &str) -> DotenvError {
        parse_env_file("t.env", text, &no_env).unwrap_err()
    }

    #[test]
    fn key_value_lines_keep_file_order() {
        let vars = parse("B=2\nA=1\nB=3\n");
        let got: Vec<_> = vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        assert_eq!(got, [("B", Some("3")), ("A", Some("1"))]);
    }

    #[test]
    fn export_prefix_is_ignored_but_names_starting_with_export_are_kept() {
        let vars = parse("export A=1\nexport\tB=2\nexportC=3\n");
        assert_eq!(vars["A"].as_deref(), Some("1"));
        assert_eq!(vars["B"].as_deref(), Some("2"));
        assert_eq!(vars["exportC"].as_deref(), Some("3"));
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let vars = parse("# comment\n\n   \n  # indented\nA=1\n");
        assert_eq!(vars.len(), 1);
    }

    #[test]
    fn inline_comments_need_whitespace_before_the_hash() {
        assert_eq!(value("A=VAL # comment", "A").as_deref(), Some("VAL"));
        assert_eq!(
            value("A=VAL# not a comment", "A").as_deref(),
            Some("VAL# not a comment")
        );
        assert_eq!(value("A= # only a comment", "A").as_deref(), Some(""));
    }

    #[test]
    fn unquoted_values_are_trimmed() {
        assert_eq!(
            value("A =  spaced out  \t", "A").as_deref(),
            Some("spaced out")
        );
        assert_eq!(value("A=\r\nB=1\r\n", "A").as_deref(), Some(""));
    }

    #[test]
    fn single_quoted_values_are_literal() {
        let vars = parse("X=x\nA='$X ${X} \\n # not a comment' # comment\nB='Let\\'s go'\n");
        assert_eq!(vars["A"].as_deref(), Some("$X ${X} \\n # not a comment"));
        assert_eq!(vars["B"].as_deref(), Some("Let's go"));
    }

    #[test]
    fn double_quoted_values_unescape_and_interpolate() {
        let vars = parse(
            "X=x\nA=\"a\\nb\\t\\\"q\\\" \\\\ $X\" # comment\nB=\"\\$X \\${X}\"\nC=\"VAL # not a comment\"\n",
        );
        assert_eq!(vars["A"].as_deref(), Some("a\nb\t\"q\" \\ x"));
        assert_eq!(vars["B"].as_deref(), Some("$X ${X}"));
        assert_eq!(vars["C"].as_deref(), Some("VAL # not a comment"));
    }

    #[test]
    fn double_quoted_values_may_span_lines() {
        let vars = parse("A=\"first\nsecond\n  third\"\nB=after\n");
        assert_eq!(vars["A"].as_deref(), Some("first\nsecond\n  third"));
        assert_eq!(vars["B"].as_deref(), Some("after"));
    }

    #[test]
    fn bare_key_is_none_to_be_taken_from_the_environment() {
        let vars = parse("A\nexport B\n");
        assert_eq!(vars["A"], None);
        assert_eq!(vars["B"], None);
    }

    #[test]
    fn yaml_style_colon_separator_is_accepted() {
        assert_eq!(value("A: Foo=bar", "A").as_deref(), Some("Foo=bar"));
        assert_eq!(value("A=1:B", "A").as_deref(), Some("1:B"));
    }

    #[test]
    fn earlier_keys_are_visible_to_interpolation() {
        let vars = parse("A=1\nB=${A}2\nC=\"${B:-x}3\"\nD=${LATER:-none}\nLATER=4\n");
        assert_eq!(vars["B"].as_deref(), Some("12"));
        assert_eq!(vars["C"].as_deref(), Some("123"));
        assert_eq!(vars["D"].as_deref(), Some("none"));
    }

    #[test]
    fn the_lookup_wins_over_earlier_keys_of_the_file() {
        let lookup = |k: &str| (k == "A").then(|| "env".to_string());
        let vars = parse_env_file("t.env", "A=file\nB=$A\n", &lookup).unwrap();
        assert_eq!(
            vars["A"].as_deref(),
            Some("file"),
            "the file's own value is returned"
        );
        assert_eq!(vars["B"].as_deref(), Some("env"));
    }

    #[test]
    fn interpolation_errors_carry_the_line_and_the_cause() {
        let e = err("A=1\n\nB=${MISSING:?set it}\n");
        assert_eq!(
            e.to_string(),
            "t.env:3: failed to interpolate the value of B"
        );
        let DotenvError::Interpolate { source, .. } = e else {
            panic!("{e:?}")
        };
        assert!(
            source.to_string().contains("required variable MISSING"),
            "{source}"
        );
    }

    #[test]
    fn unterminated_quotes_report_the_line_where_the_value_starts() {
        let e = err("A=1\nB=\"never\nclosed\n");
        assert!(
            matches!(e, DotenvError::UnterminatedQuote { line: 2, .. }),
            "{e:?}"
        );
        assert!(matches!(
            err("A='x"),
            DotenvError::UnterminatedQuote { line: 1, .. }
        ));
    }

    #[test]
    fn text_after_a_closing_quote_is_an_error() {
        let e = err("A=1\nB=\"x\" y\n");
        assert!(
            matches!(e, DotenvError::TextAfterQuote { line: 2, .. }),
            "{e:?}"
        );
    }

    #[test]
    fn bad_names_are_errors_with_their_line() {
        assert!(matches!(
            err("OK=1\nNO-GOOD=1"),
            DotenvError::InvalidName { line: 2, .. }
        ));
        assert!(matches!(
            err("A B=1"),
            DotenvError::InvalidName { line: 1, .. }
        ));
        assert!(matches!(
            err("=1"),
            DotenvError::MissingName { line: 1, .. }
        ));
        assert_eq!(value("A.B_c9=1", "A.B_c9").as_deref(), Some("1"));
    }

    #[test]
    fn raw_format_takes_values_literally() {
        let vars = parse_env_file_raw(
            "t.env",
            "# comment\n\nA=\"quoted\" $X # kept \nB\n  C=x=y\n",
        )
        .unwrap();
        assert_eq!(vars["A"].as_deref(), Some("\"quoted\" $X # kept "));
        assert_eq!(vars["B"], None);
        assert_eq!(vars["C"].as_deref(), Some("x=y"));
    }

    #[test]
    fn raw_format_rejects_names_with_whitespace_or_none() {
        let e = parse_env_file_raw("t.env", "A=1\nB C=2\n").unwrap_err();
        assert!(
            matches!(e, DotenvError::InvalidName { line: 2, .. }),
            "{e:?}"
        );
        let e = parse_env_file_raw("t.env", "=2\n").unwrap_err();
        assert!(
            matches!(e, DotenvError::MissingName { line: 1, .. }),
            "{e:?}"
        );
    }
}
