//! Layer unpack: applies one image layer (a tar stream, gzip, zstd or plain)
//! to a directory, without ever writing outside it.
//!
//! Invariants:
//! - Every path is cleaned lexically as if rooted at `/` (`../../x` is `/x`),
//!   and every write goes through a [`pathrs::Root`], which resolves each
//!   component inside the target (`openat2` with `RESOLVE_IN_ROOT`): an
//!   absolute or `..` symlink planted by an earlier entry points back into the
//!   target, never to the host.
//! - Hard links resolve their target inside the target too; a link to a
//!   missing file is an error (the layer is rejected).
//! - Character and block devices in a layer are skipped (a container gets its
//!   device nodes from the runtime, not from images).
//! - Whiteouts (`.wh.name`, `.wh..wh..opq`) are applied according to the
//!   [`Mode`]: turned into overlayfs whiteouts when the layer gets its own
//!   directory under an overlay mount, or applied as deletions when layers
//!   are flattened into one directory.
//! - The uncompressed stream is hashed as it is read, so the caller can check
//!   it against the image config's `diff_id`.

use std::collections::HashSet;
use std::fs::{File, Permissions};
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use pathrs::flags::OpenFlags;
use pathrs::{InodeType, Root};
use sha2::{Digest as _, Sha256};

/// Prefix of a whiteout file name.
const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the opaque-directory marker.
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// How whiteouts are represented in the output directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The layer gets its own directory, later stacked with overlayfs:
    /// whiteouts become 0/0 character devices and opaque directories get
    /// `trusted.overlay.opaque=y`.
    Overlay,
    /// Layers are applied one over another in the same directory: whiteouts
    /// delete what lower layers put there.
    Flat,
}

/// Compression of a layer blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl Compression {
    /// The compression a layer media type names (`…tar+gzip`, `…tar.gzip`, `…tar+zstd`).
    pub fn from_media_type(media_type: &str) -> Compression {
        if media_type.ends_with("gzip") {
            Compression::Gzip
        } else if media_type.ends_with("zstd") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// Guesses the compression from the first bytes of a blob.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// What an unpack did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnpackReport {
    /// `sha256:<hex>` of the uncompressed tar stream (the layer's diff id).
    pub diff_id: String,
    /// Entries written.
    pub entries: u64,
    /// Device nodes skipped.
    pub skipped_devices: u64,
}

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The target directory could not be opened.
    #[error("failed to open unpack target {path}")]
    OpenTarget {
        /// Target directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: pathrs::error::Error,
    },
    /// The stream is not a readable tar (or its compression is broken).
    #[error("failed to read layer tar stream")]
    Read(#[source] io::Error),
    /// One entry could not be written.
    #[error("failed to unpack layer entry {path}")]
    Entry {
        /// Cleaned path of the entry inside the target.
        path: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

/// Unpacks one layer read from `blob` into `target`.
pub fn unpack_layer(
    blob: impl Read,
    compression: Compression,
    target: &Path,
    mode: Mode,
) -> Result<UnpackReport, UnpackError> {
    let root = Root::open(target).map_err(|source| UnpackError::OpenTarget {
        path: target.to_path_buf(),
        source,
    })?;
    let reader: Box<dyn Read> = match compression {
        Compression::None => Box::new(blob),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(blob)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(blob).map_err(UnpackError::Read)?)
        }
    };
    let mut hashing = HashingReader {
        inner: reader,
        hasher: Sha256::new(),
    };
    let mut report = UnpackReport::default();
    let mut ctx = Ctx {
        root: &root,
        mode,
        created: HashSet::new(),
    };
    {
        let mut archive = tar::Archive::new(&mut hashing);
        for entry in archive.entries().map_err(UnpackError::Read)? {
            let entry = entry.map_err(UnpackError::Read)?;
            apply_entry(&mut ctx, entry, &mut report)?;
        }
    }
    // Drain trailing padding so the digest covers the whole stream.
    io::copy(&mut hashing, &mut io::sink()).map_err(UnpackError::Read)?;
    report.diff_id = format!("sha256:{}", hex::encode(hashing.hasher.finalize()));
    Ok(report)
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

struct Ctx<'a> {
    root: &'a Root,
    mode: Mode,
    /// Paths this layer created (flat mode: an opaque marker keeps them).
    created: HashSet<PathBuf>,
}

/// Cleans a tar path as if rooted at `/`; `None` for the root itself.
pub fn clean_path(raw: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::from("/");
    for component in raw.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    (out != Path::new("/")).then_some(out)
}

fn apply_entry<R: Read>(
    ctx: &mut Ctx,
    mut entry: tar::Entry<R>,
    report: &mut UnpackReport,
) -> Result<(), UnpackError> {
    let raw = entry
        .path()
        .map_err(|source| entry_error("<invalid>", source))?
        .into_owned();
    let Some(path) = clean_path(&raw) else {
        return Ok(());
    };
    let fail = |source: io::Error| entry_error(&path.display().to_string(), source);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let parent = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    if name == OPAQUE_MARKER {
        return opaque(ctx, &parent).map_err(fail);
    }
    if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
        return whiteout(ctx, &parent.join(hidden)).map_err(fail);
    }
    let kind = entry.header().entry_type();
    if kind.is_character_special() || kind.is_block_special() {
        report.skipped_devices += 1;
        return Ok(());
    }
    ctx.root
        .mkdir_all(&parent, &Permissions::from_mode(0o755))
        .map_err(|e| fail(to_io(e)))?;
    write_entry(ctx, &mut entry, &path).map_err(fail)?;
    ctx.created.insert(path);
    report.entries += 1;
    Ok(())
}

fn entry_error(path: &str, source: io::Error) -> UnpackError {
    UnpackError::Entry {
        path: path.to_string(),
        source,
    }
}

fn to_io(error: pathrs::error::Error) -> io::Error {
    io::Error::other(error)
}

fn write_entry<R: Read>(ctx: &Ctx, entry: &mut tar::Entry<R>, path: &Path) -> io::Result<()> {
    let header = entry.header().clone();
    let mode = header.mode()? & 0o7777;
    let kind = header.entry_type();
    if kind.is_dir() {
        let dir = ctx
            .root
            .mkdir_all(path, &Permissions::from_mode(mode))
            .map_err(to_io)?;
        let file = dir
            .reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY)
            .map_err(to_io)?;
        set_owner_mode(&file, &header, mode)?;
        return set_xattrs(&file, entry);
    }
    remove_existing(ctx.root, path)?;
    if kind.is_symlink() {
        let target = entry
            .link_name()?
            .ok_or_else(|| invalid("symlink without target"))?;
        ctx.root
            .create(path, &InodeType::Symlink(target.into_owned()))
            .map_err(to_io)?;
        return lchown(ctx.root, path, &header);
    }
    if kind.is_hard_link() {
        let target = entry
            .link_name()?
            .ok_or_else(|| invalid("hard link without target"))?;
        let target = clean_path(&target).ok_or_else(|| invalid("hard link to the root"))?;
        return ctx
            .root
            .create(path, &InodeType::Hardlink(target))
            .map_err(to_io);
    }
    if kind.is_fifo() {
        ctx.root
            .create(path, &InodeType::Fifo(Permissions::from_mode(mode)))
            .map_err(to_io)?;
        return lchown(ctx.root, path, &header);
    }
    if kind.is_file() || kind == tar::EntryType::Continuous {
        let flags = OpenFlags::O_WRONLY | OpenFlags::O_CREAT | OpenFlags::O_EXCL;
        let mut file = ctx
            .root
            .create_file(path, flags, &Permissions::from_mode(0o600))
            .map_err(to_io)?;
        io::copy(entry, &mut file)?;
        set_owner_mode(&file, &header, mode)?;
        set_xattrs(&file, entry)?;
        return set_mtime(&file, &header);
    }
    // Other entry types (GNU sparse, long names already folded in) carry no file.
    Ok(())
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

/// Removes a non-directory at `path` (tar entries replace what was there).
fn remove_existing(root: &Root, path: &Path) -> io::Result<()> {
    let Ok(handle) = root.resolve_nofollow(path) else {
        return Ok(());
    };
    if is_dir(&handle)? {
        root.remove_all(path).map_err(to_io)
    } else {
        root.remove_file(path).map_err(to_io)
    }
}

fn is_dir(fd: &impl AsFd) -> io::Result<bool> {
    let stat = rustix::fs::fstat(fd)?;
    Ok(rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Directory)
}

fn set_owner_mode(file: &File, header: &tar::Header, mode: u32) -> io::Result<()> {
    let uid = header.uid()? as u32;
    let gid = header.gid()? as u32;
    match std::os::unix::fs::fchown(file, Some(uid), Some(gid)) {
        // Without root, files keep the unpacking user as owner (as rootless runtimes do).
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied && !is_root() => {}
        other => other?,
    }
    // chown clears set-id bits, so the mode comes after it.
    file.set_permissions(Permissions::from_mode(mode))
}

fn lchown(root: &Root, path: &Path, header: &tar::Header) -> io::Result<()> {
    let handle = root.resolve_nofollow(path).map_err(to_io)?;
    let uid = rustix::fs::Uid::from_raw(header.uid()? as u32);
    let gid = rustix::fs::Gid::from_raw(header.gid()? as u32);
    // AT_EMPTY_PATH changes the inode the O_PATH handle points at: the link itself.
    rustix::fs::chownat(
        &handle,
        "",
        Some(uid),
        Some(gid),
        rustix::fs::AtFlags::EMPTY_PATH | rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn set_mtime(file: &File, header: &tar::Header) -> io::Result<()> {
    let mtime = header.mtime().unwrap_or(0);
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
    file.set_times(
        std::fs::FileTimes::new()
            .set_modified(when)
            .set_accessed(when),
    )
}

fn set_xattrs<R: Read>(file: &File, entry: &mut tar::Entry<R>) -> io::Result<()> {
    let Some(extensions) = entry.pax_extensions()? else {
        return Ok(());
    };
    for ext in extensions {
        let ext = ext?;
        let Some(name) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) else {
            continue;
        };
        rustix::fs::fsetxattr(
            file,
            name,
            ext.value_bytes(),
            rustix::fs::XattrFlags::empty(),
        )?;
    }
    Ok(())
}

fn whiteout(ctx: &mut Ctx, hidden: &Path) -> io::Result<()> {
    match ctx.mode {
        Mode::Flat => remove_existing(ctx.root, hidden),
        Mode::Overlay => {
            let parent = hidden.parent().unwrap_or(Path::new("/"));
            ctx.root
                .mkdir_all(parent, &Permissions::from_mode(0o755))
                .map_err(to_io)?;
            remove_existing(ctx.root, hidden)?;
            ctx.root
                .create(
                    hidden,
                    &InodeType::CharacterDevice(Permissions::from_mode(0o000), 0),
                )
                .map_err(to_io)
        }
    }
}

fn opaque(ctx: &mut Ctx, dir: &Path) -> io::Result<()> {
    let handle = ctx
        .root
        .mkdir_all(dir, &Permissions::from_mode(0o755))
        .map_err(to_io)?;
    match ctx.mode {
        Mode::Overlay => {
            let file = handle
                .reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY)
                .map_err(to_io)?;
            rustix::fs::fsetxattr(
                &file,
                "trusted.overlay.opaque",
                b"y",
                rustix::fs::XattrFlags::empty(),
            )?;
            Ok(())
        }
        Mode::Flat => {
            let file = handle
                .reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY)
                .map_err(to_io)?;
            let mut names = Vec::new();
            for item in rustix::fs::Dir::read_from(&file)? {
                let name = item?.file_name().to_string_lossy().into_owned();
                if name != "." && name != ".." {
                    names.push(name);
                }
            }
            for name in names {
                let child = dir.join(&name);
                if !ctx.created.contains(&child) {
                    remove_existing(ctx.root, &child)?;
                }
            }
            Ok(())
        }
    }
}
