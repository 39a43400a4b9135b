//! Stack-file diagnostics: one problem at one place in one file.
//!
//! Every error the loader finds in a stack file becomes a [`Diagnostic`]; the
//! loader collects all of them before giving up, so the user sees every problem
//! at once. Rendering shows `file:line:col: path: message`, then the offending line
//! with a caret under the column.

use std::fmt;

use crate::yaml::Pos;

/// One problem in a stack file.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// Where it is; `None` when it concerns no single place (a dependency cycle
    /// is reported at one of its members instead whenever possible).
    pub pos: Option<Pos>,
    /// Path in the document, such as `services.web.ports[0]`; may be empty.
    pub path: String,
    /// What is wrong, lowercase.
    pub message: String,
    /// A suggestion, such as "did you mean `image`?".
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at `pos` for the value at `path`.
    pub fn at(pos: &Pos, path: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            pos: Some(pos.clone()),
            path: path.into(),
            message: message.into(),
            hint: None,
        }
    }

    /// The same diagnostic with a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// `{"file", "line", "column", "path", "message", "hint"}` for programs;
    /// `file`, `line` and `column` are null when it concerns no single place,
    /// `hint` when there is none.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "file": self.pos.as_ref().map(|p| p.file.path.clone()),
            "line": self.pos.as_ref().map(|p| p.line),
            "column": self.pos.as_ref().map(|p| p.col),
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
        })
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(pos) = &self.pos {
            write!(f, "{pos}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{}", self.message)?;
        if let Some(pos) = self.pos.as_ref().filter(|p| p.line > 0)
            && let Some(line) = pos.file.line_text(pos.line)
        {
            {
                let gutter = pos.line.to_string();
                let pad = " ".repeat(gutter.len());
                let caret = " ".repeat(pos.col.saturating_sub(1) as usize);
                write!(f, "\n {pad} |\n {gutter} | {line}\n {pad} | {caret}^")?;
            }
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  = help: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem found in a set of stack files, in file order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Every diagnostic as [`Diagnostic::to_json`], in order.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(self.0.iter().map(Diagnostic::to_json).collect())
    }

    /// Sort by file, line and column, and drop exact repeats.
    pub fn sorted(mut self) -> Diagnostics {
        self.0.sort_by_key(key);
        self.0.dedup_by(|a, b| a.to_string() == b.to_string());
        self
    }
}

fn key(d: &Diagnostic) -> (String, u32, u32) {
    match &d.pos {
        Some(p) => (p.file.path.clone(), p.line, p.col),
        None => (String::new(), 0, 0),
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "{d}")?;
        }
        let n = self.0.len();
        write!(
            f,
            "{n} error{} in the stack file",
            if n == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for Diagnostics {}

/// The closest of `candidates` to `word`, when it is close enough to suggest.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// An error and its sources, joined by `: `, for messages shown to the user.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diagnostic_shows_file_line_col_path_and_the_line() {
        let node = crate::yaml::parse("stack.yml", "services:\n  web:\n    imgae: x\n")
            .unwrap()
            .remove(0);
        let key = node
            .get("services")
            .unwrap()
            .get("web")
            .unwrap()
            .get("imgae")
            .unwrap();
        let d = Diagnostic::at(
            key.key_pos.as_ref().unwrap(),
            "services.web",
            "unknown key `imgae`",
        )
        .with_hint("did you mean `image`?");
        let text = d.to_string();
        assert!(
            text.starts_with("stack.yml:3:5: services.web: unknown key `imgae`"),
            "{text}"
        );
        assert!(text.contains(" 3 |     imgae: x\n   |     ^"), "{text}");
    }

    #[test]
    fn did_you_mean_suggests_only_close_words() {
        assert_eq!(did_you_mean("imgae", ["image", "ports"]), Some("image"));
        assert_eq!(did_you_mean("zzz", ["image", "ports"]), None);
    }
}
