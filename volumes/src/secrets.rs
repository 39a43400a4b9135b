//! Compose `configs` and `secrets` delivered as files: content resolved from
//! a file, an environment variable or inline text, written into a
//! per-container tmpfs with the asked owner and mode, and bind-mounted
//! read-only at the target.
//!
//! Two steps, so the planner can see a change without touching the host:
//! [`resolve`] is pure apart from reading a `file` source and gives each
//! file a digest (content, owner, mode, target); [`SecretFiles::deliver`]
//! writes resolved files and returns the mounts for the runtime.
//!
//! Invariants: the per-container directory is a tmpfs of mode 0700 (unless
//! built [`SecretFiles::without_tmpfs`]), so secret content never reaches a
//! disk; a file gets its owner before its mode, so a mode without write or
//! setuid bits is the last thing set; removal is idempotent. A running
//! container keeps the file it was started with (its bind mount holds the
//! old inode): a changed digest means recreate.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use rcompose_reconciler::fsutil;
use rcompose_runtime::MountSpec;
use sha2::{Digest, Sha256};

use crate::mounter::{HostMount, LinuxMounter, Mounter};
use crate::store::VolumePaths;

/// Mode of a config or secret file when none is given (as docker compose).
pub const DEFAULT_MODE: u32 = 0o444;

/// Whether a file is a config or a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A `configs:` entry, at `/<name>` by default.
    Config,
    /// A `secrets:` entry, at `/run/secrets/<name>` by default.
    Secret,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Config => "config",
            FileKind::Secret => "secret",
        })
    }
}

/// Where the content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    /// `file:`, already an absolute host path.
    File(PathBuf),
    /// `environment:`, the name of a variable.
    Environment(String),
    /// `content:`, inline text.
    Content(String),
}

/// One config or secret of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRequest {
    /// Config or secret.
    pub kind: FileKind,
    /// The top-level key.
    pub name: String,
    /// Where the content comes from.
    pub source: FileSource,
    /// `target:` of the service's reference.
    pub target: Option<String>,
    /// `uid:` (0 when unset).
    pub uid: Option<u32>,
    /// `gid:` (0 when unset).
    pub gid: Option<u32>,
    /// `mode:` ([`DEFAULT_MODE`] when unset).
    pub mode: Option<u32>,
}

/// A config or secret with its content read and its defaults applied.
#[derive(Clone, PartialEq, Eq)]
pub struct ResolvedFile {
    /// Config or secret.
    pub kind: FileKind,
    /// The top-level key.
    pub name: String,
    /// Absolute path inside the container.
    pub target: String,
    /// The bytes to deliver.
    pub content: Vec<u8>,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// File mode.
    pub mode: u32,
    /// `sha256:<hex>` of content, owner, mode and target.
    pub digest: String,
}

impl fmt::Debug for ResolvedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedFile")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("target", &self.target)
            .field("content", &format_args!("<{} bytes>", self.content.len()))
            .field("uid", &self.uid)
            .field("gid", &self.gid)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("digest", &self.digest)
            .finish()
    }
}

/// Why a config or secret could not be resolved, written or removed.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The `file` source could not be read.
    #[error("{kind} {name}: failed to read {path}")]
    ReadSource {
        /// Config or secret.
        kind: FileKind,
        /// The top-level key.
        name: String,
        /// The source file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The `environment` source is not set.
    #[error("{kind} {name}: environment variable {variable} is not set")]
    MissingVariable {
        /// Config or secret.
        kind: FileKind,
        /// The top-level key.
        name: String,
        /// The variable.
        variable: String,
    },
    /// The target is not a usable path.
    #[error("{kind} {name}: invalid target {target:?}: {reason}")]
    InvalidTarget {
        /// Config or secret.
        kind: FileKind,
        /// The top-level key.
        name: String,
        /// The target asked for.
        target: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A container id that cannot be a directory name.
    #[error("invalid container id {0:?} for configs and secrets")]
    InvalidContainer(String),
    /// Writing or deleting files failed.
    #[error("failed to {what} {path}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// Path concerned.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The tmpfs could not be mounted.
    #[error("failed to mount the configs and secrets tmpfs on {path}")]
    Mount {
        /// Mount point.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The tmpfs could not be unmounted; nothing was deleted.
    #[error("failed to unmount the configs and secrets tmpfs on {path}")]
    Unmount {
        /// Mount point.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, SecretError>;

/// Reads a request's content and applies the defaults.
pub fn resolve(request: &FileRequest, env: &BTreeMap<String, String>) -> Result<ResolvedFile> {
    let target = target_of(request)?;
    let content = read_content(request, env)?;
    let (uid, gid) = (request.uid.unwrap_or(0), request.gid.unwrap_or(0));
    let mode = request.mode.unwrap_or(DEFAULT_MODE);
    let digest = digest(&content, uid, gid, mode, &target);
    Ok(ResolvedFile {
        kind: request.kind,
        name: request.name.clone(),
        target,
        content,
        uid,
        gid,
        mode,
        digest,
    })
}

fn read_content(request: &FileRequest, env: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    match &request.source {
        FileSource::Content(text) => Ok(text.as_bytes().to_vec()),
        FileSource::Environment(variable) => match env.get(variable) {
            Some(value) => Ok(value.as_bytes().to_vec()),
            None => Err(SecretError::MissingVariable {
                kind: request.kind,
                name: request.name.clone(),
                variable: variable.clone(),
            }),
        },
        FileSource::File(path) => fs::read(path).map_err(|source| SecretError::ReadSource {
            kind: request.kind,
            name: request.name.clone(),
            path: path.clone(),
            source,
        }),
    }
}

/// The absolute target inside the container: the default, or `target:`
/// (a relative secret target is under `/run/secrets`, a relative config
/// target under `/`).
pub fn target_of(request: &FileRequest) -> Result<String> {
    let base = match request.kind {
        FileKind::Config => "/",
        FileKind::Secret => "/run/secrets/",
    };
    let target = match request.target.as_deref() {
        None => format!("{base}{}", request.name),
        Some(t) if t.starts_with('/') => t.to_string(),
        Some(t) => format!("{base}{t}"),
    };
    let invalid = |reason| SecretError::InvalidTarget {
        kind: request.kind,
        name: request.name.clone(),
        target: target.clone(),
        reason,
    };
    let path = Path::new(&target);
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(invalid("it must not contain .."));
    }
    if path.file_name().is_none() || target.ends_with('/') {
        return Err(invalid("it must name a file"));
    }
    Ok(target)
}

fn digest(content: &[u8], uid: u32, gid: u32, mode: u32, target: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(content);
    hasher.update(format!(
        "\0uid={uid}\0gid={gid}\0mode={mode:o}\0target={target}"
    ));
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// What [`SecretFiles::deliver`] wrote for one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Host paths of the files, in request order.
    pub paths: Vec<PathBuf>,
    /// Read-only bind mounts for the runtime, in request order.
    pub mounts: Vec<MountSpec>,
    /// Target → digest, to record with the container.
    pub digests: BTreeMap<String, String>,
}

/// Writes and removes the per-container configs and secrets directory.
pub struct SecretFiles<M = LinuxMounter> {
    paths: VolumePaths,
    mounter: M,
    tmpfs: bool,
}

impl<M: Mounter> SecretFiles<M> {
    /// Files under `paths.run`, each container's on its own tmpfs.
    pub fn new(paths: VolumePaths, mounter: M) -> SecretFiles<M> {
        SecretFiles {
            paths,
            mounter,
            tmpfs: true,
        }
    }

    /// Files in plain directories, no tmpfs: for tests without root.
    pub fn without_tmpfs(self) -> SecretFiles<M> {
        SecretFiles {
            tmpfs: false,
            ..self
        }
    }

    /// The mounter, for tests that look at what it did.
    pub fn mounter(&self) -> &M {
        &self.mounter
    }

    /// The directory of a container's files.
    pub fn dir(&self, container_id: &str) -> PathBuf {
        self.paths.secrets_dir(container_id)
    }

    /// Writes `files` for a container (replacing what it had) and returns
    /// the mounts; on failure, the container's directory is removed.
    pub fn deliver(&self, container_id: &str, files: &[ResolvedFile]) -> Result<Delivered> {
        check_container(container_id)?;
        let result = self.write_all(container_id, files);
        if result.is_err() {
            let _ = self.remove(container_id);
        }
        result
    }

    fn write_all(&self, container_id: &str, files: &[ResolvedFile]) -> Result<Delivered> {
        let dir = self.dir(container_id);
        self.prepare_dir(&dir)?;
        let mut delivered = Delivered {
            paths: Vec::new(),
            mounts: Vec::new(),
            digests: BTreeMap::new(),
        };
        for (index, file) in files.iter().enumerate() {
            let path = dir
                .join(format!("{}s", file.kind))
                .join(format!("{index:03}-{}", safe_name(&file.name)));
            self.write_file(&path, file)?;
            delivered.mounts.push(bind_mount(&path, &file.target));
            delivered
                .digests
                .insert(file.target.clone(), file.digest.clone());
            delivered.paths.push(path);
        }
        Ok(delivered)
    }

    /// Creates the directory (tmpfs mounted, mode 0700) and empties it.
    fn prepare_dir(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        let private = fs::Permissions::from_mode(0o700);
        fs::set_permissions(dir, private).map_err(io_err("set the mode of", dir))?;
        let mount_err = |source| SecretError::Mount {
            path: dir.to_path_buf(),
            source,
        };
        if self.tmpfs && !self.mounter.is_mounted(dir).map_err(mount_err)? {
            self.mounter.mount(&tmpfs_mount(dir)).map_err(mount_err)?;
        }
        for sub in ["configs", "secrets"] {
            let sub = dir.join(sub);
            fsutil::remove_dir_all_if_exists(&sub).map_err(io_err("empty", &sub))?;
            fs::create_dir(&sub).map_err(io_err("create", &sub))?;
        }
        Ok(())
    }

    /// Writes a new file readable by root only, then sets owner, then mode
    /// (the directory was emptied, so the name is free).
    fn write_file(&self, path: &Path, file: &ResolvedFile) -> Result<()> {
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io_err("create", path))?;
        out.write_all(&file.content)
            .map_err(io_err("write", path))?;
        drop(out);
        self.set_owner(path, file.uid, file.gid)?;
        let mode = fs::Permissions::from_mode(file.mode);
        fs::set_permissions(path, mode).map_err(io_err("set the mode of", path))
    }

    /// Changes the owner unless it already is the asked one, so that an
    /// unprivileged run works for files owned by the caller.
    fn set_owner(&self, path: &Path, uid: u32, gid: u32) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::symlink_metadata(path).map_err(io_err("read", path))?;
        if (meta.uid(), meta.gid()) == (uid, gid) {
            return Ok(());
        }
        self.mounter
            .chown(path, uid, gid)
            .map_err(io_err("change the owner of", path))
    }

    /// Unmounts and deletes a container's files; nothing there is success.
    pub fn remove(&self, container_id: &str) -> Result<()> {
        check_container(container_id)?;
        let dir = self.dir(container_id);
        let unmount_err = |source| SecretError::Unmount {
            path: dir.clone(),
            source,
        };
        // Nothing is mounted where there is no directory: no need to read
        // the mount table, which grows with every running container.
        if !dir.exists() {
            return Ok(());
        }
        if self.mounter.is_mounted(&dir).map_err(unmount_err)? {
            self.mounter.unmount(&dir).map_err(unmount_err)?;
            if self.mounter.is_mounted(&dir).map_err(unmount_err)? {
                return Err(unmount_err(io::Error::other("still mounted after unmount")));
            }
        }
        fsutil::remove_dir_all_if_exists(&dir).map_err(io_err("delete", &dir))
    }
}

fn tmpfs_mount(dir: &Path) -> HostMount {
    let options = ["nosuid", "nodev", "noexec", "mode=0700"];
    HostMount {
        source: "tmpfs".into(),
        target: dir.to_path_buf(),
        fstype: "tmpfs".into(),
        options: options.map(String::from).to_vec(),
    }
}

fn bind_mount(source: &Path, target: &str) -> MountSpec {
    MountSpec {
        target: target.into(),
        source: source.to_string_lossy().into_owned(),
        kind: "bind".into(),
        options: vec!["rbind".into(), "ro".into()],
    }
}

/// A key as a file name: anything outside `[A-Za-z0-9._-]` becomes `_`.
fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '_',
        })
        .collect()
}

fn check_container(id: &str) -> Result<()> {
    let ok = !id.is_empty() && !id.starts_with('.') && !id.contains('/');
    match ok {
        true => Ok(()),
        false => Err(SecretError::InvalidContainer(id.into())),
    }
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SecretError {
    let path = path.to_path_buf();
    move |source| SecretError::Io { what, path, source }
}

#[cfg(test)]
mod tests;
