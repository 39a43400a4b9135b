//! Reading: [`read_logs`] selects entries across the rotated files and the
//! live one, [`follow`] and [`Follower`] continue from where reading stopped.
//!
//! Invariants: files are read oldest first and each at most once (identified
//! by device and inode, so a rotation racing with the read is neither missed
//! nor read twice); only complete lines are parsed, malformed ones skipped.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::writer::rotated_index;
use super::{LOG_FILE, LogEntry, LogError, parse_bytes};

const READ_CHUNK: usize = 64 * 1024;

/// Which entries `docker logs` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// Only the last N matching entries.
    pub tail: Option<usize>,
    /// Only entries logged at or after this time.
    pub since: Option<SystemTime>,
    /// Only entries logged at or before this time.
    pub until: Option<SystemTime>,
    /// Prefix each rendered line with its time (see [`render`](super::render)).
    pub timestamps: bool,
}

impl LogQuery {
    /// Whether `entry` passes the time filters (`tail` aside).
    pub fn matches(&self, entry: &LogEntry) -> bool {
        self.since.is_none_or(|since| entry.time >= since)
            && self.until.is_none_or(|until| entry.time <= until)
    }
}

/// Reads the entries `query` selects from `dir`'s log files, oldest first.
///
/// `tail` applies after the time filters. Malformed lines are skipped with a
/// warning; a missing directory or log file reads as no entries.
pub fn read_logs(dir: &Path, query: &LogQuery) -> Result<Vec<LogEntry>, LogError> {
    follow(dir, query).map(|(entries, _)| entries)
}

/// Like [`read_logs`], plus a [`Follower`] that continues exactly where the
/// reading stopped (`logs --follow`).
pub fn follow(dir: &Path, query: &LogQuery) -> Result<(Vec<LogEntry>, Follower), LogError> {
    let path = dir.join(LOG_FILE);
    // Open the live file first: a rotation while the older files are read
    // then shows up as a file already held, not as a gap.
    let mut live = OpenLog::open(&path)?;
    let mut selected = Selection::new(query);
    if query.tail == Some(0) {
        if let Some(log) = &mut live {
            log.skip_to_end().map_err(io_at(&path))?;
        }
    } else {
        read_rotated(dir, live.as_ref().map(|log| log.id), &mut selected)?;
        if let Some(log) = &mut live {
            log.read_available(&mut |e| selected.push(e))
                .map_err(io_at(&path))?;
        }
    }
    let follower = Follower {
        path,
        current: live,
    };
    Ok((selected.entries.into(), follower))
}

/// Follows the live log file across rotations (`logs --follow`), for a
/// caller that polls.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    current: Option<OpenLog>,
}

impl Follower {
    /// Follows `dir`'s log from the start of the live file, or of the file
    /// still to be created.
    pub fn new(dir: &Path) -> Self {
        Self {
            path: dir.join(LOG_FILE),
            current: None,
        }
    }

    /// Entries appended since the last call. After a rotation the old file
    /// is read to its end through the open descriptor, then the new one
    /// from its start.
    pub fn poll_new(&mut self) -> Result<Vec<LogEntry>, LogError> {
        // Looked up before reading: once the path names another file, the
        // writer has stopped writing the one held.
        let on_disk = path_id(&self.path)?;
        let mut entries = Vec::new();
        if let Some(log) = &mut self.current {
            log.rewind_if_truncated().map_err(io_at(&self.path))?;
            log.read_available(&mut |e| entries.push(e))
                .map_err(io_at(&self.path))?;
            if on_disk == Some(log.id) {
                return Ok(entries);
            }
            self.current = None;
        }
        if on_disk.is_some() {
            self.current = OpenLog::open(&self.path)?;
        }
        if let Some(log) = &mut self.current {
            log.read_available(&mut |e| entries.push(e))
                .map_err(io_at(&self.path))?;
        }
        Ok(entries)
    }
}

/// Device and inode: a file's identity across renames.
type FileId = (u64, u64);

/// A log file being read: its identity, how far it was read, and the bytes
/// of a line not yet complete.
#[derive(Debug)]
struct OpenLog {
    file: File,
    id: FileId,
    offset: u64,
    pending: Vec<u8>,
}

impl OpenLog {
    fn open(path: &Path) -> Result<Option<Self>, LogError> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_at(path)(e)),
        };
        let meta = file.metadata().map_err(io_at(path))?;
        Ok(Some(Self {
            file,
            id: (meta.dev(), meta.ino()),
            offset: 0,
            pending: Vec::new(),
        }))
    }

    /// Reads to the current end, handing every complete line to `sink`.
    fn read_available(&mut self, sink: &mut dyn FnMut(LogEntry)) -> io::Result<()> {
        let mut chunk = vec![0; READ_CHUNK];
        loop {
            let n = match self.file.read(&mut chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.offset += n as u64;
            self.pending.extend_from_slice(&chunk[..n]);
            drain_lines(&mut self.pending, sink);
        }
    }

    fn skip_to_end(&mut self) -> io::Result<()> {
        self.offset = self.file.seek(SeekFrom::End(0))?;
        Ok(())
    }

    /// Starts over when the file shrank below what was read (truncated in place).
    fn rewind_if_truncated(&mut self) -> io::Result<()> {
        if self.file.metadata()?.len() < self.offset {
            self.offset = self.file.seek(SeekFrom::Start(0))?;
            self.pending.clear();
        }
        Ok(())
    }
}

/// Parses the complete lines at the front of `pending` and removes them.
fn drain_lines(pending: &mut Vec<u8>, sink: &mut dyn FnMut(LogEntry)) {
    let Some(end) = pending.iter().rposition(|&b| b == b'\n') else {
        return;
    };
    for line in pending[..end].split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        match parse_bytes(line) {
            Ok(entry) => sink(entry),
            Err(error) => tracing::warn!(%error, "skipping malformed log line"),
        }
    }
    pending.drain(..=end);
}

/// Entries that pass a query's filters, at most `tail` of the newest.
struct Selection<'q> {
    query: &'q LogQuery,
    entries: VecDeque<LogEntry>,
}

impl<'q> Selection<'q> {
    fn new(query: &'q LogQuery) -> Self {
        Self {
            query,
            entries: VecDeque::new(),
        }
    }

    fn push(&mut self, entry: LogEntry) {
        if !self.query.matches(&entry) {
            return;
        }
        self.entries.push_back(entry);
        if self.query.tail.is_some_and(|n| self.entries.len() > n) {
            self.entries.pop_front();
        }
    }
}

/// Reads the rotated files, oldest first, except the one identified by `skip`.
fn read_rotated(dir: &Path, skip: Option<FileId>, into: &mut Selection) -> Result<(), LogError> {
    for path in rotated_files(dir)? {
        // A file may vanish in a rotation racing with this read.
        let Some(mut log) = OpenLog::open(&path)? else {
            continue;
        };
        if Some(log.id) != skip {
            log.read_available(&mut |e| into.push(e))
                .map_err(io_at(&path))?;
        }
    }
    Ok(())
}

/// Paths of `dir`'s rotated log files, oldest (highest index) first.
fn rotated_files(dir: &Path) -> Result<Vec<PathBuf>, LogError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_at(dir)(e)),
    };
    let mut indexed: Vec<(u32, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| Some((rotated_index(e.file_name().to_str()?)?, e.path())))
        .collect();
    indexed.sort_by_key(|(index, _)| std::cmp::Reverse(*index));
    Ok(indexed.into_iter().map(|(_, path)| path).collect())
}

fn path_id(path: &Path) -> Result<Option<FileId>, LogError> {
    match fs::metadata(path) {
        Ok(meta) => Ok(Some((meta.dev(), meta.ino()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_at(path)(e)),
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::logs::LogWriter;
    use crate::logs::tests::{at, texts, write_lines};
    use crate::logs::writer::open_append;

    #[test]
    fn read_logs_applies_since_and_until_before_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = LogWriter::open(dir.path(), None, 1).unwrap();
        write_lines(&mut writer, &["t0", "t1", "t2", "t3", "t4"]);
        let query = LogQuery {
            since: Some(at(1)),
            until: Some(at(3)),
            tail: Some(2),
            ..LogQuery::default()
        };
        let entries = read_logs(dir.path(), &query).unwrap();
        assert_eq!(texts(&entries), ["t2\n", "t3\n"]);
    }

    #[test]
    fn read_logs_of_a_missing_directory_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let entries = read_logs(&dir.path().join("nope"), &LogQuery::default()).unwrap();
        assert!(entries.is_empty());
    }

    #[test]
    fn read_logs_skips_malformed_and_unfinished_lines() {
        let dir = tempfile::tempdir().unwrap();
        write_lines(&mut LogWriter::open(dir.path(), None, 1).unwrap(), &["ok"]);
        let mut file = open_append(&dir.path().join(LOG_FILE)).unwrap();
        file.write_all(b"garbage\n{\"log\":\"half").unwrap();
        let entries = read_logs(dir.path(), &LogQuery::default()).unwrap();
        assert_eq!(texts(&entries), ["ok\n"]);
    }

    #[test]
    fn follower_returns_only_entries_appended_since_the_last_poll() {
        let dir = tempfile::tempdir().unwrap();
        let mut follower = Follower::new(dir.path());
        assert!(follower.poll_new().unwrap().is_empty());
        let mut writer = LogWriter::open(dir.path(), None, 1).unwrap();
        write_lines(&mut writer, &["a", "b"]);
        assert_eq!(texts(&follower.poll_new().unwrap()), ["a\n", "b\n"]);
        assert!(follower.poll_new().unwrap().is_empty());
        write_lines(&mut writer, &["c"]);
        assert_eq!(texts(&follower.poll_new().unwrap()), ["c\n"]);
    }

    #[test]
    fn follower_waits_for_the_rest_of_an_unfinished_line() {
        let dir = tempfile::tempdir().unwrap();
        let line = br#"{"log":"x\n","stream":"stdout","time":"1970-01-01T00:00:00Z"}"#;
        let mut file = open_append(&dir.path().join(LOG_FILE)).unwrap();
        let mut follower = Follower::new(dir.path());
        file.write_all(&line[..20]).unwrap();
        assert!(follower.poll_new().unwrap().is_empty());
        file.write_all(&line[20..]).unwrap();
        file.write_all(b"\n").unwrap();
        assert_eq!(texts(&follower.poll_new().unwrap()), ["x\n"]);
    }

    #[test]
    fn follower_finishes_the_rotated_file_before_starting_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = LogWriter::open(dir.path(), Some(200), 2).unwrap();
        let mut follower = Follower::new(dir.path());
        write_lines(&mut writer, &["r0"]);
        assert_eq!(texts(&follower.poll_new().unwrap()), ["r0\n"]);
        write_lines(&mut writer, &["r1", "r2", "r3"]);
        assert!(dir.path().join("container.log.1").exists());
        assert_eq!(
            texts(&follower.poll_new().unwrap()),
            ["r1\n", "r2\n", "r3\n"]
        );
    }

    #[test]
    fn follow_returns_the_tail_and_continues_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = LogWriter::open(dir.path(), Some(200), 3).unwrap();
        write_lines(&mut writer, &["f0", "f1", "f2", "f3"]);
        let query = LogQuery {
            tail: Some(3),
            ..LogQuery::default()
        };
        let (entries, mut follower) = follow(dir.path(), &query).unwrap();
        assert_eq!(texts(&entries), ["f1\n", "f2\n", "f3\n"]);
        write_lines(&mut writer, &["f4"]);
        assert_eq!(texts(&follower.poll_new().unwrap()), ["f4\n"]);
    }

    #[test]
    fn follow_with_tail_0_shows_only_new_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = LogWriter::open(dir.path(), None, 1).unwrap();
        write_lines(&mut writer, &["old"]);
        let query = LogQuery {
            tail: Some(0),
            ..LogQuery::default()
        };
        let (entries, mut follower) = follow(dir.path(), &query).unwrap();
        assert!(entries.is_empty());
        write_lines(&mut writer, &["new"]);
        assert_eq!(texts(&follower.poll_new().unwrap()), ["new\n"]);
    }
}
