//! A container's root filesystem: an overlayfs whose lower layers are the
//! image's shared, read-only layer directories and whose upper and work
//! directories belong to the container alone.
//!
//! The mount is described as a value ([`Overlay`]) first; [`mount`] and
//! [`unmount`] are thin. Unmounting something that is not mounted succeeds,
//! so cleanup can always be retried.

use std::io;
use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, UnmountFlags};

/// Mount options longer than this do not fit in one page and are refused.
pub const MAX_OPTIONS: usize = 4095;

/// An overlay mount of one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overlay {
    /// Layer directories, top layer first.
    pub lower: Vec<PathBuf>,
    /// The container's writable layer.
    pub upper: PathBuf,
    /// overlayfs scratch directory (same filesystem as `upper`).
    pub work: PathBuf,
    /// Where the merged tree is mounted.
    pub target: PathBuf,
}

/// Why the root filesystem could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// The image has no layers (overlayfs needs at least one lower directory).
    #[error("image has no layers to mount at {0}")]
    NoLayers(PathBuf),
    /// Too many layers for one mount option string.
    #[error(
        "overlay options for {target} are {len} bytes, more than the {MAX_OPTIONS} the kernel takes"
    )]
    TooLong {
        /// Mount point.
        target: PathBuf,
        /// Length of the options.
        len: usize,
    },
    /// A directory could not be created.
    #[error("failed to create {path}")]
    Mkdir {
        /// Directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The mount syscall failed.
    #[error("failed to mount overlay at {target}")]
    Mount {
        /// Mount point.
        target: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

impl Overlay {
    /// The `mount -o` data string.
    pub fn options(&self) -> Result<String, RootfsError> {
        if self.lower.is_empty() {
            return Err(RootfsError::NoLayers(self.target.clone()));
        }
        let lower: Vec<String> = self.lower.iter().map(|p| escape(p)).collect();
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            escape(&self.upper),
            escape(&self.work)
        );
        if options.len() > MAX_OPTIONS {
            return Err(RootfsError::TooLong {
                target: self.target.clone(),
                len: options.len(),
            });
        }
        Ok(options)
    }
}

/// Escapes the separators overlayfs gives meaning to (`:` and `,`).
fn escape(path: &Path) -> String {
    let text = path.display().to_string();
    text.replace('\\', "\\\\")
        .replace(':', "\\:")
        .replace(',', "\\,")
}

/// Creates the directories and mounts the overlay (no-op when already mounted).
pub fn mount(overlay: &Overlay) -> Result<(), RootfsError> {
    let options = overlay.options()?;
    for dir in [&overlay.upper, &overlay.work, &overlay.target] {
        std::fs::create_dir_all(dir).map_err(|source| RootfsError::Mkdir {
            path: dir.clone(),
            source,
        })?;
    }
    if is_mounted(&overlay.target) {
        return Ok(());
    }
    rustix::mount::mount(
        "overlay",
        &overlay.target,
        "overlay",
        MountFlags::empty(),
        std::ffi::CString::new(options)
            .map_err(|e| RootfsError::Mount {
                target: overlay.target.clone(),
                source: io::Error::new(io::ErrorKind::InvalidInput, e),
            })?
            .as_c_str(),
    )
    .map_err(|e| RootfsError::Mount {
        target: overlay.target.clone(),
        source: e.into(),
    })
}

/// Unmounts `target` (lazily, so a busy mount does not block cleanup).
pub fn unmount(target: &Path) -> io::Result<()> {
    match rustix::mount::unmount(target, UnmountFlags::DETACH) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOENT => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether something is mounted exactly at `target`: the kernel's
/// `STATX_ATTR_MOUNT_ROOT` of the path, or where the kernel does not tell,
/// the mount points of `/proc/self/mountinfo` (a file that grows with every
/// running container's mounts, so it is read only then).
pub fn is_mounted(target: &Path) -> bool {
    use rustix::fs::{AtFlags, CWD, StatxAttributes, StatxFlags};
    let flags = AtFlags::NO_AUTOMOUNT | AtFlags::SYMLINK_NOFOLLOW;
    match rustix::fs::statx(CWD, target, flags, StatxFlags::empty()) {
        Ok(st) if st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT) => {
            st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT)
        }
        Ok(_) | Err(rustix::io::Errno::NOSYS) => {
            let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
                return false;
            };
            mount_points(&info).any(|p| Path::new(&p) == target)
        }
        Err(_) => false,
    }
}

/// Mount points listed in the text of `/proc/self/mountinfo`, unescaped.
pub fn mount_points(mountinfo: &str) -> impl Iterator<Item = String> + '_ {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_octal)
}

fn unescape_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlay(lower: &[&str]) -> Overlay {
        Overlay {
            lower: lower.iter().map(PathBuf::from).collect(),
            upper: "/c/upper".into(),
            work: "/c/work".into(),
            target: "/c/rootfs".into(),
        }
    }

    #[test]
    fn options_list_the_top_layer_first_and_escape_separators() {
        let o = overlay(&["/l/top", "/l/a:b,c"]);
        assert_eq!(
            o.options().unwrap(),
            "lowerdir=/l/top:/l/a\\:b\\,c,upperdir=/c/upper,workdir=/c/work"
        );
    }

    #[test]
    fn an_image_without_layers_or_with_too_many_is_refused() {
        assert!(matches!(
            overlay(&[]).options(),
            Err(RootfsError::NoLayers(_))
        ));
        let long: Vec<String> = (0..60)
            .map(|i| format!("/var/lib/rcompose/images/layers/{i:064}"))
            .collect();
        let refs: Vec<&str> = long.iter().map(String::as_str).collect();
        assert!(matches!(
            overlay(&refs).options(),
            Err(RootfsError::TooLong { .. })
        ));
    }

    #[test]
    fn mountinfo_mount_points_are_unescaped() {
        let info = "36 35 98:0 /mnt1 /mnt\\040with\\040space rw - ext3 /dev/root rw\n";
        assert_eq!(
            mount_points(info).collect::<Vec<_>>(),
            vec!["/mnt with space"]
        );
    }
}
