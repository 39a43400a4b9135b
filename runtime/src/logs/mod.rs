//! Container logs in Docker's json-file format: the monitor's [`LogWriter`],
//! the CLI's [`read_logs`] / [`follow`] / [`Follower`], and the RFC 3339 time
//! helpers both need.
//!
//! On-disk layout, inside a container's directory:
//!
//! ```text
//! container.log      live file, opened O_APPEND by the writer
//! container.log.1    previous file
//! container.log.N    oldest kept file (N = max_files - 1)
//! ```
//!
//! Every file holds one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2026-11-26T01:02:03.123456789Z"}`.
//! `log` keeps the line's newline; a line longer than [`MAX_LINE`] bytes is
//! written as several entries, all but the last without newline. Invariants:
//! the writer appends whole lines in one `write`, and a file only grows past
//! `max_size` when it holds a single entry.
//!
//! This file owns the format (a line as stored, [`parse_line`], [`render`]);
//! `writer` appends and rotates, `reader` selects and follows, and `time`
//! holds the RFC 3339 and duration parsing both ends share.

mod reader;
mod time;
mod writer;

use std::io;
use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

pub use reader::{Follower, LogQuery, follow, read_logs};
pub use time::{format_rfc3339, parse_rfc3339, parse_since};
pub use writer::LogWriter;

/// Name of the live log file inside a container's directory.
pub const LOG_FILE: &str = "container.log";
/// Longest line logged as one entry; longer ones are split, as Docker does.
pub const MAX_LINE: usize = 16 * 1024;

/// Output stream a log line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The process's standard output.
    Stdout,
    /// The process's standard error.
    Stderr,
}

impl Stream {
    fn index(self) -> usize {
        self as usize
    }
}

/// One logged line (or piece of a long line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// Stream it was written to.
    pub stream: Stream,
    /// When the monitor received it.
    pub time: SystemTime,
    /// The text, with its newline unless it is a piece of a longer line.
    pub line: String,
}

/// Why logs could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A log file or the log directory could not be read.
    #[error("failed to read logs at {path}")]
    Io {
        /// File or directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// A line is not a json-file log object.
    #[error("malformed log line")]
    Json(#[source] serde_json::Error),
    /// A line's `time` is not RFC 3339.
    #[error("invalid log timestamp {0:?}")]
    Time(String),
}

/// One line of a log file as stored.
#[derive(Serialize, Deserialize)]
struct RawLine<T> {
    log: T,
    stream: Stream,
    time: String,
}

/// Parses one line of a json-file log (without its newline).
pub fn parse_line(line: &str) -> Result<LogEntry, LogError> {
    parse_bytes(line.as_bytes())
}

fn parse_bytes(line: &[u8]) -> Result<LogEntry, LogError> {
    let raw: RawLine<String> = serde_json::from_slice(line).map_err(LogError::Json)?;
    let time = parse_rfc3339(&raw.time).ok_or(LogError::Time(raw.time))?;
    Ok(LogEntry {
        stream: raw.stream,
        time,
        line: raw.log,
    })
}

/// Formats `entry` as `docker logs` prints it, optionally prefixed by its time.
pub fn render(entry: &LogEntry, timestamps: bool) -> String {
    if timestamps {
        format!("{} {}", format_rfc3339(entry.time), entry.line)
    } else {
        entry.line.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    /// The time `secs` seconds after the epoch.
    pub(super) fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// The text of each entry.
    pub(super) fn texts(entries: &[LogEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.line.as_str()).collect()
    }

    /// Logs each of `lines` to stdout, line `i` at second `i`.
    pub(super) fn write_lines(writer: &mut LogWriter, lines: &[&str]) {
        for (i, line) in lines.iter().enumerate() {
            let text = format!("{line}\n");
            writer
                .write(Stream::Stdout, text.as_bytes(), at(i as u64))
                .unwrap();
        }
    }

    #[test]
    fn parse_line_reads_dockers_json_file_format() {
        let line = r#"{"log":"hello\n","stream":"stderr","time":"2026-11-26T01:02:03.123456789Z"}"#;
        let entry = parse_line(line).unwrap();
        assert_eq!(entry.stream, Stream::Stderr);
        assert_eq!(entry.line, "hello\n");
        assert_eq!(format_rfc3339(entry.time), "2026-11-26T01:02:03.123456789Z");
    }

    #[test]
    fn parse_line_rejects_a_bad_time_and_bad_json() {
        let bad_time = r#"{"log":"x","stream":"stdout","time":"yesterday"}"#;
        assert!(matches!(parse_line(bad_time), Err(LogError::Time(_))));
        assert!(matches!(parse_line("{"), Err(LogError::Json(_))));
    }

    #[test]
    fn render_prefixes_the_time_only_with_timestamps() {
        let entry = LogEntry {
            stream: Stream::Stdout,
            time: at(0),
            line: "hi\n".into(),
        };
        assert_eq!(render(&entry, false), "hi\n");
        assert_eq!(render(&entry, true), "1970-01-01T00:00:00.000000000Z hi\n");
    }
}
