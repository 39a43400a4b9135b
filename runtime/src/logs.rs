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

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Name of the live log file inside a container's directory.
pub const LOG_FILE: &str = "container.log";
/// Longest line logged as one entry; longer ones are split, as Docker does.
pub const MAX_LINE: usize = 16 * 1024;

const READ_CHUNK: usize = 64 * 1024;
const SECS_PER_DAY: i64 = 86_400;

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

// ---------------------------------------------------------------- writing

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
fn rotated_index(name: &str) -> Option<u32> {
    let digits = name.strip_prefix(LOG_FILE)?.strip_prefix('.')?;
    let canonical = !digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit());
    canonical.then(|| digits.parse().ok()).flatten()
}

fn open_append(path: &Path) -> io::Result<File> {
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

// ---------------------------------------------------------------- reading

/// Which entries `docker logs` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// Only the last N matching entries.
    pub tail: Option<usize>,
    /// Only entries logged at or after this time.
    pub since: Option<SystemTime>,
    /// Only entries logged at or before this time.
    pub until: Option<SystemTime>,
    /// Prefix each rendered line with its time (see [`render`]).
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

// ---------------------------------------------------------------- time

/// Formats `time` in UTC with nine fraction digits, as Docker's logs do
/// (`2026-11-26T01:02:03.123456789Z`).
pub fn format_rfc3339(time: SystemTime) -> String {
    let (secs, nanos) = to_unix(time);
    let (year, month, day) = civil_from_days(secs.div_euclid(SECS_PER_DAY));
    let clock = secs.rem_euclid(SECS_PER_DAY);
    let (hour, minute, second) = (clock / 3600, clock / 60 % 60, clock % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{nanos:09}Z")
}

/// Parses an RFC 3339 time: `Z` or a `±HH:MM` offset, 0 to 9 (or more,
/// ignored past nanoseconds) fraction digits.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let s = text.trim();
    if !s.is_ascii() || s.len() < 20 || !matches!(s.as_bytes()[10], b'T' | b't') {
        return None;
    }
    let days = parse_date(&s[..10])?;
    let clock = parse_clock(&s[11..19])?;
    let (nanos, zone) = split_fraction(&s[19..])?;
    let offset = parse_zone(zone)?;
    from_unix(days * SECS_PER_DAY + clock - offset, nanos)
}

/// Parses `--since`/`--until`: RFC 3339, unix seconds (`1700000000.5`) or a
/// duration before `now` (`10m`, `1h30m`, `42s`, `1.5h`).
pub fn parse_since(text: &str, now: SystemTime) -> Option<SystemTime> {
    let text = text.trim();
    parse_rfc3339(text)
        .or_else(|| parse_unix(text))
        .or_else(|| now.checked_sub(parse_duration(text)?))
}

fn to_unix(time: SystemTime) -> (i64, u32) {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => (after.as_secs() as i64, after.subsec_nanos()),
        Err(e) => {
            let before = e.duration();
            let secs = -(before.as_secs() as i64);
            match before.subsec_nanos() {
                0 => (secs, 0),
                n => (secs - 1, 1_000_000_000 - n),
            }
        }
    }
}

fn from_unix(secs: i64, nanos: u32) -> Option<SystemTime> {
    let whole = Duration::from_secs(secs.unsigned_abs());
    let base = if secs >= 0 {
        UNIX_EPOCH.checked_add(whole)
    } else {
        UNIX_EPOCH.checked_sub(whole)
    };
    base?.checked_add(Duration::from_nanos(nanos.into()))
}

/// `YYYY-MM-DD` → days since 1970-01-01.
fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (number(&s[..4])?, number(&s[5..7])?, number(&s[8..])?);
    let valid = (1..=12).contains(&month) && (1..=days_in_month(year, month)).contains(&day);
    valid.then(|| days_from_civil(year, month, day))
}

/// `HH:MM:SS` → seconds into the day.
fn parse_clock(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (hour, minute, second) = (number(&s[..2])?, number(&s[3..5])?, number(&s[6..])?);
    (hour < 24 && minute < 60 && second < 60).then_some(hour * 3600 + minute * 60 + second)
}

/// Splits an optional `.digits` fraction off the front of `rest`.
fn split_fraction(rest: &str) -> Option<(u32, &str)> {
    let Some(digits) = rest.strip_prefix('.') else {
        return Some((0, rest));
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    Some((fraction_nanos(&digits[..end])?, &digits[end..]))
}

/// `Z` or `±HH:MM` → seconds east of UTC.
fn parse_zone(zone: &str) -> Option<i64> {
    if zone.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hhmm = &zone[1..];
    if hhmm.len() != 5 || hhmm.as_bytes()[2] != b':' {
        return None;
    }
    let (hour, minute) = (number(&hhmm[..2])?, number(&hhmm[3..])?);
    (hour < 24 && minute < 60).then_some(sign * (hour * 3600 + minute * 60))
}

/// Fraction digits (the part after the dot) → nanoseconds.
fn fraction_nanos(digits: &str) -> Option<u32> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let kept = &digits[..digits.len().min(9)];
    let value: u32 = kept.parse().ok()?;
    Some(value * 10u32.pow(9 - kept.len() as u32))
}

/// A non-empty run of ASCII digits as a number.
fn number(s: &str) -> Option<i64> {
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| s.parse().ok()).flatten()
}

fn parse_unix(text: &str) -> Option<SystemTime> {
    let (secs, nanos) = match text.split_once('.') {
        Some((secs, fraction)) => (secs, fraction_nanos(fraction)?),
        None => (text, 0),
    };
    from_unix(number(secs)?, nanos)
}

/// A Go-style duration: one or more `<number><unit>` terms, unit one of
/// `ns us µs ms s m h`, number possibly fractional.
fn parse_duration(text: &str) -> Option<Duration> {
    if text.is_empty() {
        return None;
    }
    let (mut rest, mut total) = (text, 0u128);
    while !rest.is_empty() {
        let (nanos, tail) = duration_term(rest)?;
        total = total.checked_add(nanos)?;
        rest = tail;
    }
    Some(Duration::from_nanos(u64::try_from(total).ok()?))
}

fn duration_term(s: &str) -> Option<(u128, &str)> {
    let is_numeric = |c: char| c.is_ascii_digit() || c == '.';
    let (number_part, rest) = s.split_at(s.find(|c| !is_numeric(c)).unwrap_or(s.len()));
    let (unit, tail) = rest.split_at(rest.find(is_numeric).unwrap_or(rest.len()));
    let scale: u128 = match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    };
    let (whole, fraction) = number_part.split_once('.').unwrap_or((number_part, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let whole = if whole.is_empty() { 0 } else { number(whole)? };
    let fraction = match fraction {
        "" => 0,
        digits => u128::from(fraction_nanos(digits)?) * scale / 1_000_000_000,
    };
    Some((u128::try_from(whole).ok()? * scale + fraction, tail))
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (Howard Hinnant's civil-from-days).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) → days since 1970-01-01; inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn file_lines(dir: &Path, name: &str) -> Vec<String> {
        let text = fs::read_to_string(dir.join(name)).unwrap();
        text.lines().map(String::from).collect()
    }

    fn texts(entries: &[LogEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.line.as_str()).collect()
    }

    fn write_lines(writer: &mut LogWriter, lines: &[&str]) {
        for (i, line) in lines.iter().enumerate() {
            let text = format!("{line}\n");
            writer
                .write(Stream::Stdout, text.as_bytes(), at(i as u64))
                .unwrap();
        }
    }

    #[test]
    fn format_rfc3339_prints_utc_with_nine_fraction_digits() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(format_rfc3339(t), "2023-11-14T22:13:20.123456789Z");
        assert_eq!(format_rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
    }

    #[test]
    fn format_rfc3339_handles_times_before_the_epoch() {
        let t = UNIX_EPOCH - Duration::from_nanos(1);
        assert_eq!(format_rfc3339(t), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59.999999999Z"), Some(t));
    }

    #[test]
    fn rfc3339_round_trips_across_leap_days_and_centuries() {
        for text in [
            "2024-02-29T12:00:00.000000001Z",
            "2000-02-29T00:00:00.500000000Z",
            "2100-03-01T23:59:59.999999999Z",
            "1999-12-31T23:59:59.000000000Z",
            "2026-11-26T01:02:03.123456789Z",
        ] {
            assert_eq!(format_rfc3339(parse_rfc3339(text).unwrap()), text);
        }
    }

    #[test]
    fn parse_rfc3339_accepts_offsets_and_short_fractions() {
        let expected = UNIX_EPOCH + Duration::new(1_700_000_000, 500_000_000);
        assert_eq!(parse_rfc3339("2023-11-14T23:13:20.5+01:00"), Some(expected));
        assert_eq!(parse_rfc3339("2023-11-14T20:43:20.5-01:30"), Some(expected));
        assert_eq!(parse_rfc3339("2023-11-14t22:13:20.5z"), Some(expected));
        let whole = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(whole));
    }

    #[test]
    fn parse_rfc3339_rejects_malformed_times() {
        for text in [
            "",
            "2023-11-14T22:13:20",
            "2023-02-29T00:00:00Z",
            "2023-13-01T00:00:00Z",
            "2023-11-14T24:00:00Z",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20+0100",
            "2023-11-14 22:13:20Z",
            "2023-11-14T22:13:2éZ",
        ] {
            assert_eq!(parse_rfc3339(text), None, "{text:?}");
        }
    }

    #[test]
    fn parse_since_accepts_rfc3339_unix_seconds_and_durations() {
        let now = at(1_700_000_000);
        let since = |text| parse_since(text, now);
        assert_eq!(since("2023-11-14T22:13:20Z"), Some(now));
        assert_eq!(since("1700000000"), Some(now));
        assert_eq!(
            since("1700000000.5"),
            Some(now + Duration::from_millis(500))
        );
        assert_eq!(since("10m"), Some(at(1_700_000_000 - 600)));
        assert_eq!(since("1h30m"), Some(at(1_700_000_000 - 5400)));
        assert_eq!(since("42s"), Some(at(1_700_000_000 - 42)));
        assert_eq!(since("1.5h"), Some(at(1_700_000_000 - 5400)));
        assert_eq!(since("250ms"), Some(now - Duration::from_millis(250)));
    }

    #[test]
    fn parse_since_rejects_garbage() {
        for text in ["", "yesterday", "10x", "h", ".s", "1..5", "-5m"] {
            assert_eq!(parse_since(text, at(100)), None, "{text:?}");
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
