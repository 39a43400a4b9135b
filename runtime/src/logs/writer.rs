//! Writing: [`LogWriter`] appends a container's output as json-file lines
//! and rotates `container.log` → `container.log.1` → … by size.
//!
//! Invariants: every entry is appended with one `write` on an `O_APPEND`
//! descriptor; a file only grows past `max_size` when it holds a single
//! entry; at most `max_files` files exist, the live one included.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{LOG_FILE, MAX_LINE, RawLine, Stream, format_rfc3339};

/// Appends a container's output to its log files, rotating by size.
#[derive(Debug)]
pub struct LogWriter {
    dir: PathBuf,
    file: File,
    size: u64,
    max_size: Option<u64>,
    max_files: u32,
    /// Bytes of an unfinished line, per stream.
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    /// Opens (or creates) `dir/container.log` for appending; `max_files`
    /// counts the live file, so 0 and 1 both mean "no rotated files".
    pub fn open(dir: &Path, max_size: Option<u64>, max_files: u32) -> io::Result<Self> {
        let file = open_append(&dir.join(LOG_FILE))?;
        let size = file.metadata()?.len();
        Ok(Self {
            dir: dir.to_path_buf(),
            file,
            size,
            max_size,
            max_files,
            partial: Default::default(),
        })
    }

    /// Logs `bytes` read from `stream`: every finished line, and pieces of
    /// [`MAX_LINE`] bytes of an overlong one; the rest waits for more input.
    pub fn write(&mut self, stream: Stream, bytes: &[u8], now: SystemTime) -> io::Result<()> {
        let idx = stream.index();
        let mut buf = std::mem::take(&mut self.partial[idx]);
        buf.extend_from_slice(bytes);
        let mut start = 0;
        let mut result = Ok(());
        while let Some(len) = next_piece(&buf[start..]) {
            result = self.append_entry(stream, &buf[start..start + len], now);
            if result.is_err() {
                break;
            }
            start += len;
        }
        buf.drain(..start);
        self.partial[idx] = buf;
        result
    }

    /// Logs the unfinished line of `stream` (without newline); call on EOF.
    pub fn flush_partial(&mut self, stream: Stream, now: SystemTime) -> io::Result<()> {
        let rest = std::mem::take(&mut self.partial[stream.index()]);
        if rest.is_empty() {
            return Ok(());
        }
        self.append_entry(stream, &rest, now)
    }

    fn append_entry(&mut self, stream: Stream, piece: &[u8], now: SystemTime) -> io::Result<()> {
        let raw = RawLine {
            log: &*String::from_utf8_lossy(piece),
            stream,
            time: format_rfc3339(now),
        };
        let mut line = serde_json::to_vec(&raw)?;
        line.push(b'\n');
        let len = line.len() as u64;
        if self
            .max_size
            .is_some_and(|max| self.size > 0 && self.size + len > max)
        {
            self.rotate()?;
        }
        self.file.write_all(&line)?;
        self.size += len;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let live = self.dir.join(LOG_FILE);
        if self.max_files <= 1 {
            remove_if_exists(&live)?;
        }
        for (from, to) in rotation_renames(self.max_files) {
            rename_if_exists(&self.dir.join(from), &self.dir.join(to))?;
        }
        self.file = open_append(&live)?;
        self.size = 0;
        Ok(())
    }
}

/// Length of the next entry at the start of `buf`: a line with its newline,
/// or an overlong line's first piece (never splitting a UTF-8 character).
fn next_piece(buf: &[u8]) -> Option<usize> {
    let window = &buf[..buf.len().min(MAX_LINE + 1)];
    if let Some(pos) = window.iter().position(|&b| b == b'\n') {
        return Some(pos + 1);
    }
    let is_continuation = |i: usize| buf[i] & 0xC0 == 0x80;
    (buf.len() > MAX_LINE).then(|| {
        (MAX_LINE - 3..=MAX_LINE)
            .rev()
            .find(|&i| !is_continuation(i))
            .unwrap_or(MAX_LINE)
    })
}

/// Renames that age every kept file by one, oldest first so each target is
/// free (or the oldest file, which is dropped) when it is overwritten.
fn rotation_renames(max_files: u32) -> Vec<(String, String)> {
    (0..max_files.saturating_sub(1))
        .rev()
        .map(|i| (log_file_name(i), log_file_name(i + 1)))
        .collect()
}

fn log_file_name(index: u32) -> String {
    match index {
        0 => LOG_FILE.to_string(),
        n => format!("{LOG_FILE}.{n}"),
    }
}

/// Index N of a rotated file name `container.log.N`.
pub(super) fn rotated_index(name: &str) -> Option<u32> {
    let digits = name.strip_prefix(LOG_FILE)?.strip_prefix('.')?;
    let canonical = !digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit());
    canonical.then(|| digits.parse().ok()).flatten()
}

pub(super) fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::tests::{at, texts, write_lines};
    use crate::logs::{LogQuery, parse_line, read_logs};

    fn file_lines(dir: &Path, name: &str) -> Vec<String> {
        let text = fs::read_to_string(dir.join(name)).unwrap();
        text.lines().map(String::from).collect()
    }

    #[test]
    fn writer_writes_one_json_object_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = LogWriter::open(dir.path(), None, 1).unwrap();
        writer.write(Stream::Stdout, b"a\nb\n", at(1)).unwrap();
        let lines = file_lines(dir.path(), LOG_FILE);
        assert_eq!(
            lines[0],
            r#"{"log":"a\n","stream":"stdout","time":"1970-01-01T00:00:01.000000000Z"}"#
        );
        assert_eq!(parse_line(&lines[1]).unwrap().line, "b\n");
    }

    #[test]
    fn writer_holds_an_unfinished_line_per_stream_until_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = LogWriter::open(dir.path(), None, 1).unwrap();
        writer.write(Stream::Stdout, b"hel", at(1)).unwrap();
        writer.write(Stream::Stderr, b"oops\n", at(2)).unwrap();
        writer.write(Stream::Stdout, b"lo\nwor", at(3)).unwrap();
        writer.flush_partial(Stream::Stdout, at(4)).unwrap();
        let entries = read_logs(dir.path(), &LogQuery::default()).unwrap();
        assert_eq!(texts(&entries), ["oops\n", "hello\n", "wor"]);
        assert_eq!(entries[0].stream, Stream::Stderr);
    }

    #[test]
    fn writer_splits_overlong_lines_into_16k_pieces_without_newline() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = LogWriter::open(dir.path(), None, 1).unwrap();
        let line = format!("{}\n", "x".repeat(MAX_LINE * 2 + 10));
        for chunk in line.as_bytes().chunks(5000) {
            writer.write(Stream::Stdout, chunk, at(1)).unwrap();
        }
        let entries = read_logs(dir.path(), &LogQuery::default()).unwrap();
        let lens: Vec<usize> = entries.iter().map(|e| e.line.len()).collect();
        assert_eq!(lens, [MAX_LINE, MAX_LINE, 11]);
        assert!(entries[2].line.ends_with('\n'));
    }

    #[test]
    fn a_line_of_exactly_16k_stays_whole() {
        let line = format!("{}\n", "x".repeat(MAX_LINE));
        assert_eq!(next_piece(line.as_bytes()), Some(MAX_LINE + 1));
        assert_eq!(next_piece(&line.as_bytes()[..MAX_LINE]), None);
    }

    #[test]
    fn pieces_do_not_split_a_multibyte_character() {
        let text = format!("{}€rest", "x".repeat(MAX_LINE - 1));
        assert_eq!(next_piece(text.as_bytes()), Some(MAX_LINE - 1));
    }

    #[test]
    fn rotation_keeps_max_files_files_in_all() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = LogWriter::open(dir.path(), Some(100), 3).unwrap();
        write_lines(&mut writer, &["l0", "l1", "l2", "l3", "l4"]);
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["container.log", "container.log.1", "container.log.2"]
        );
        let entries = read_logs(dir.path(), &LogQuery::default()).unwrap();
        assert_eq!(texts(&entries), ["l2\n", "l3\n", "l4\n"]);
    }

    #[test]
    fn rotation_with_one_file_starts_the_file_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = LogWriter::open(dir.path(), Some(100), 1).unwrap();
        write_lines(&mut writer, &["l0", "l1"]);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(file_lines(dir.path(), LOG_FILE).len(), 1);
    }

    #[test]
    fn writer_reopens_an_existing_log_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        write_lines(&mut LogWriter::open(dir.path(), None, 1).unwrap(), &["a"]);
        write_lines(&mut LogWriter::open(dir.path(), None, 1).unwrap(), &["b"]);
        let entries = read_logs(dir.path(), &LogQuery::default()).unwrap();
        assert_eq!(texts(&entries), ["a\n", "b\n"]);
    }

    #[test]
    fn rotation_renames_age_files_oldest_first() {
        let renames = rotation_renames(3);
        assert_eq!(
            renames[0],
            ("container.log.1".into(), "container.log.2".into())
        );
        assert_eq!(
            renames[1],
            ("container.log".into(), "container.log.1".into())
        );
        assert!(rotation_renames(1).is_empty());
    }

    #[test]
    fn rotated_index_accepts_only_canonical_numbers() {
        assert_eq!(rotated_index("container.log.12"), Some(12));
        for name in [
            "container.log",
            "container.log.",
            "container.log.01",
            "container.log.1.gz",
        ] {
            assert_eq!(rotated_index(name), None, "{name}");
        }
    }
}
