//! Strict in-memory fakes of the seams: [`FakeMounter`] (records mounts and
//! ownership changes, mounts nothing) and [`FakeDriver`] (volumes kept in a
//! map). Both record typed calls; stacking a second mount on a mount point,
//! or mounting on a missing directory, panics, because real code never
//! should.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::driver::{DriverError, Result, StringMap, VolumeDriver};
use crate::mounter::{HostMount, Mounter};
use crate::store::VolumeRecord;

/// A call made to a [`FakeMounter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MounterCall {
    /// `mount`.
    Mount(HostMount),
    /// `unmount` of a path with something mounted on it.
    Unmount(PathBuf),
    /// `chown(path, uid, gid)`.
    Chown(PathBuf, u32, u32),
}

#[derive(Debug, Default)]
struct MounterState {
    calls: Vec<MounterCall>,
    mounted: BTreeSet<PathBuf>,
    fail_unmount: bool,
}

/// A [`Mounter`] that only records.
#[derive(Debug, Default)]
pub struct FakeMounter {
    state: Mutex<MounterState>,
}

impl FakeMounter {
    /// A mounter with nothing mounted.
    pub fn new() -> FakeMounter {
        FakeMounter::default()
    }

    fn state(&self) -> MutexGuard<'_, MounterState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<MounterCall> {
        self.state().calls.clone()
    }

    /// What is mounted now.
    pub fn mounted(&self) -> Vec<PathBuf> {
        self.state().mounted.iter().cloned().collect()
    }

    /// Makes every later `unmount` fail with EBUSY.
    pub fn fail_unmounts(&self) {
        self.state().fail_unmount = true;
    }

    /// The last owner `path` was given.
    pub fn owner(&self, path: &Path) -> Option<(u32, u32)> {
        self.state().calls.iter().rev().find_map(|call| match call {
            MounterCall::Chown(p, uid, gid) if p == path => Some((*uid, *gid)),
            _ => None,
        })
    }
}

impl Mounter for FakeMounter {
    fn mount(&self, mount: &HostMount) -> io::Result<()> {
        assert!(
            mount.target.is_dir(),
            "fake mounter: mount on missing directory {:?}",
            mount.target
        );
        let mut state = self.state();
        assert!(
            state.mounted.insert(mount.target.clone()),
            "fake mounter: second mount stacked on {:?}",
            mount.target
        );
        state.calls.push(MounterCall::Mount(mount.clone()));
        Ok(())
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        let mut state = self.state();
        if !state.mounted.contains(target) {
            return Ok(());
        }
        if state.fail_unmount {
            return Err(io::Error::from_raw_os_error(
                nix::errno::Errno::EBUSY as i32,
            ));
        }
        state.mounted.remove(target);
        state.calls.push(MounterCall::Unmount(target.to_path_buf()));
        Ok(())
    }

    fn is_mounted(&self, target: &Path) -> io::Result<bool> {
        Ok(self.state().mounted.contains(target))
    }

    fn chown(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        std::fs::symlink_metadata(path)?;
        let call = MounterCall::Chown(path.to_path_buf(), uid, gid);
        self.state().calls.push(call);
        Ok(())
    }
}

/// A call made to a [`FakeDriver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverCall {
    /// `create` of a volume that did not exist.
    Create(String),
    /// `mount`.
    Mount(String),
    /// `remove` of a volume that existed.
    Remove(String),
}

#[derive(Debug, Default)]
struct DriverState {
    volumes: BTreeMap<String, VolumeRecord>,
    calls: Vec<DriverCall>,
}

/// A [`VolumeDriver`] keeping volumes in memory, under `/fake/volumes`.
#[derive(Debug, Default)]
pub struct FakeDriver {
    state: Mutex<DriverState>,
}

impl FakeDriver {
    /// A driver with no volumes.
    pub fn new() -> FakeDriver {
        FakeDriver::default()
    }

    fn state(&self) -> MutexGuard<'_, DriverState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every create, mount and remove that changed something, in order.
    pub fn calls(&self) -> Vec<DriverCall> {
        self.state().calls.clone()
    }
}

impl VolumeDriver for FakeDriver {
    fn name(&self) -> &'static str {
        "local"
    }

    fn create(&self, name: &str, labels: &StringMap, options: &StringMap) -> Result<VolumeRecord> {
        let mut state = self.state();
        if let Some(record) = state.volumes.get(name) {
            return Ok(record.clone());
        }
        let record = VolumeRecord {
            name: name.into(),
            driver: "local".into(),
            labels: labels.clone(),
            options: options.clone(),
            created: "2026-01-01T00:00:00.000000000Z".into(),
            mountpoint: Path::new("/fake/volumes").join(name).join("_data"),
        };
        state.volumes.insert(name.into(), record.clone());
        state.calls.push(DriverCall::Create(name.into()));
        Ok(record)
    }

    fn get(&self, name: &str) -> Result<Option<VolumeRecord>> {
        Ok(self.state().volumes.get(name).cloned())
    }

    fn list(&self) -> Result<Vec<VolumeRecord>> {
        Ok(self.state().volumes.values().cloned().collect())
    }

    fn mount(&self, name: &str) -> Result<PathBuf> {
        let mut state = self.state();
        let record = state.volumes.get(name).cloned();
        let record = record.ok_or_else(|| DriverError::NotFound(name.into()))?;
        state.calls.push(DriverCall::Mount(name.into()));
        Ok(record.mountpoint)
    }

    fn remove(&self, name: &str) -> Result<()> {
        let mut state = self.state();
        if state.volumes.remove(name).is_some() {
            state.calls.push(DriverCall::Remove(name.into()));
        }
        Ok(())
    }
}
