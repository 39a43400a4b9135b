//! Byte plumbing the loaders share: hashing what is written, guessing and
//! undoing a stream's compression, and temporary paths under `<store>/tmp/`.
//!
//! Invariant: a [`TempPath`] is removed (file or tree) on every exit path,
//! including a leftover from a crashed process that had the same pid.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest as _, Sha256};

use super::{LoadError, read_err, temp_err};
use crate::fsutil;
use crate::store::Store;
use crate::unpack::Compression;

/// Digest and size of some content.
#[derive(Clone, Debug)]
pub(super) struct Hashed {
    pub(super) digest: String,
    pub(super) size: u64,
}

/// A writer that hashes and counts what goes through it.
pub(super) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(super) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    pub(super) fn finish(mut self) -> io::Result<Hashed> {
        self.inner.flush()?;
        Ok(Hashed {
            digest: format!("sha256:{}", hex::encode(self.hasher.finalize())),
            size: self.size,
        })
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub(super) fn hash_file(path: &Path) -> Result<Hashed, LoadError> {
    let mut file = File::open(path).map_err(read_err(path))?;
    let mut hashing = HashingWriter::new(io::sink());
    io::copy(&mut file, &mut hashing).map_err(read_err(path))?;
    hashing.finish().map_err(read_err(path))
}

/// Reads up to four bytes to guess the compression; returns a reader that still yields them.
pub(super) fn sniff_stream<R: Read>(mut reader: R) -> io::Result<(Compression, impl Read)> {
    let mut head = [0u8; 4];
    let mut filled = 0;
    while filled < head.len() {
        match reader.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let compression = Compression::sniff(&head[..filled]);
    Ok((
        compression,
        io::Cursor::new(head[..filled].to_vec()).chain(reader),
    ))
}

pub(super) fn sniff_file(path: &Path) -> Result<Compression, LoadError> {
    let file = File::open(path).map_err(read_err(path))?;
    Ok(sniff_stream(file).map_err(read_err(path))?.0)
}

pub(super) fn decoder<'a>(
    reader: impl Read + 'a,
    compression: Compression,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(reader)?),
    })
}

/// A path under `<store>/tmp/`, removed (file or tree) when dropped.
pub(super) struct TempPath(pub(super) PathBuf);

impl TempPath {
    pub(super) fn new(store: &Store, kind: &str) -> Result<TempPath, LoadError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = store.dir().join("tmp");
        fs::create_dir_all(&dir).map_err(temp_err(&dir))?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{kind}-{}-{n}", std::process::id()));
        // A leftover of a crashed process that had our pid.
        let temp = TempPath(path);
        temp.remove();
        Ok(temp)
    }

    fn remove(&self) {
        let _ = fsutil::remove_dir_all_if_exists(&self.0);
        let _ = fs::remove_file(&self.0);
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        self.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_a_stream_keeps_its_first_bytes() {
        let (compression, mut reader) = sniff_stream(&[0x1f, 0x8b, 8, 0, 1, 2][..]).unwrap();
        assert_eq!(compression, Compression::Gzip);
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        assert_eq!(all, [0x1f, 0x8b, 8, 0, 1, 2]);
        let (compression, mut reader) = sniff_stream(&b"ab"[..]).unwrap();
        assert_eq!(compression, Compression::None);
        all.clear();
        reader.read_to_end(&mut all).unwrap();
        assert_eq!(all, b"ab");
    }
}
