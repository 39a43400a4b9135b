//! The DNS table on disk: its atomic save and the server's view of it,
//! reloaded whenever the file is replaced.
//!
//! On-disk layout: one JSON document (a serialised [`DnsTable`]) shared by
//! every network's DNS server (`<state>/networks/dns.json`), its path passed
//! to each daemon on its command line. Writers replace it atomically (temp
//! file, fsync, rename, fsync of the directory), so a reader never sees a
//! half-written table.
//!
//! Invariant of [`TableFile`]: it always holds the last table that parsed;
//! a missing or broken file keeps the previous table in service.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;
use tracing::{debug, warn};

use super::table::DnsTable;

/// Failures while reading or writing the table file.
#[derive(Debug, Error)]
pub enum TableFileError {
    /// The file could not be read.
    #[error("failed to read dns table {path}")]
    Read {
        /// The table file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is not a valid table.
    #[error("failed to parse dns table {path}")]
    Parse {
        /// The table file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The table could not be written.
    #[error("failed to write dns table {path}")]
    Write {
        /// The table file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// Reads and parses the table at `path`.
pub fn load_table(path: &Path) -> Result<DnsTable, TableFileError> {
    let bytes = fs::read(path).map_err(|source| TableFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| TableFileError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// Replaces the table at `path` atomically (temporary file, rename). It is
/// made again from the network records on every change, so it is not
/// synced to disk.
pub fn save_table(path: &Path, table: &DnsTable) -> Result<(), TableFileError> {
    write_atomically(path, table).map_err(|source| TableFileError::Write {
        path: path.to_owned(),
        source,
    })
}

fn write_atomically(path: &Path, table: &DnsTable) -> io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(table).map_err(io::Error::other)?;
    bytes.push(b'\n');
    rcompose_reconciler::fsutil::write_atomic_unsynced(path, &bytes)
}

/// What identifies one version of the file: a rename gives a new inode, an
/// in-place rewrite a new mtime or length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    mtime: i64,
    mtime_nsec: i64,
    len: u64,
}

impl Stamp {
    fn of(metadata: &fs::Metadata) -> Stamp {
        Stamp {
            inode: metadata.ino(),
            mtime: metadata.mtime(),
            mtime_nsec: metadata.mtime_nsec(),
            len: metadata.len(),
        }
    }
}

/// The table as last loaded from its file, refreshed on demand.
#[derive(Debug)]
pub struct TableFile {
    path: PathBuf,
    stamp: Option<Stamp>,
    table: Arc<DnsTable>,
}

impl TableFile {
    /// A view of `path`, empty until the first [`TableFile::current`].
    pub fn new(path: PathBuf) -> TableFile {
        TableFile {
            path,
            stamp: None,
            table: Arc::default(),
        }
    }

    /// The path being watched.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current table, reloading it first when the file changed since
    /// the last call. One `stat` per call; the file is read only on change.
    pub fn current(&mut self) -> Arc<DnsTable> {
        match fs::metadata(&self.path) {
            Ok(metadata) => self.refresh(Stamp::of(&metadata)),
            Err(error) => debug!(path = %self.path.display(), %error, "dns table not readable"),
        }
        Arc::clone(&self.table)
    }

    fn refresh(&mut self, stamp: Stamp) {
        if self.stamp == Some(stamp) {
            return;
        }
        // Remember the stamp even when parsing fails, so that a broken file
        // is reported once rather than on every query.
        self.stamp = Some(stamp);
        match load_table(&self.path) {
            Ok(table) => {
                debug!(path = %self.path.display(), "dns table reloaded");
                self.table = Arc::new(table);
            }
            Err(error) => warn!(
                error = &error as &dyn std::error::Error,
                "keeping the previous dns table"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::table::{DnsEndpoint, DnsNetwork};

    fn table_with(container: &str) -> DnsTable {
        let mut table = DnsTable::default();
        table
            .networks
            .insert("n".to_owned(), DnsNetwork { internal: false });
        table.endpoints.push(DnsEndpoint {
            network: "n".to_owned(),
            container_name: container.to_owned(),
            names: Vec::new(),
            addresses: vec!["10.0.0.2".parse().unwrap()],
            dns_servers: Vec::new(),
        });
        table
    }

    #[test]
    fn a_saved_table_loads_back_equal_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dns.json");
        save_table(&path, &table_with("a")).unwrap();
        assert_eq!(load_table(&path).unwrap(), table_with("a"));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn the_view_picks_up_a_table_replaced_by_rename() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dns.json");
        let mut view = TableFile::new(path.clone());
        assert_eq!(*view.current(), DnsTable::default());
        save_table(&path, &table_with("a")).unwrap();
        assert_eq!(*view.current(), table_with("a"));
        save_table(&path, &table_with("b")).unwrap();
        assert_eq!(*view.current(), table_with("b"));
    }

    #[test]
    fn the_view_keeps_the_last_good_table_when_the_file_breaks_or_vanishes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dns.json");
        let mut view = TableFile::new(path.clone());
        save_table(&path, &table_with("a")).unwrap();
        assert_eq!(*view.current(), table_with("a"));
        fs::write(&path, b"{ not json").unwrap();
        assert_eq!(*view.current(), table_with("a"));
        fs::remove_file(&path).unwrap();
        assert_eq!(*view.current(), table_with("a"));
    }

    #[test]
    fn load_errors_name_the_file_and_what_failed() {
        let error = load_table(Path::new("/nonexistent/dns.json")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "failed to read dns table /nonexistent/dns.json"
        );
    }
}
