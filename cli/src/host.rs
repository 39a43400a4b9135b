//! Where this host's state lives (`--root`, `--run-dir`) and the runtime
//! wired to it. The monitor of each container is this same binary, re-run
//! with a hidden sub-command.

use std::path::PathBuf;

use clap::Args;
use rcompose_runtime::container::Paths;
use rcompose_runtime::manager::{MonitorCommand, Runtime};

/// Options naming the host state directories.
#[derive(Args, Debug, Clone)]
pub struct HostArgs {
    /// Persistent state: images, containers, logs.
    #[arg(
        long,
        global = true,
        env = "RCOMPOSE_ROOT",
        default_value = "/var/lib/rcompose"
    )]
    pub root: PathBuf,
    /// Volatile state, gone after a reboot.
    #[arg(
        long,
        global = true,
        env = "RCOMPOSE_RUN_DIR",
        default_value = "/run/rcompose"
    )]
    pub run_dir: PathBuf,
}

impl HostArgs {
    /// The state paths.
    pub fn paths(&self) -> Paths {
        Paths {
            state_root: self.root.clone(),
            run_dir: self.run_dir.clone(),
        }
    }

    /// The container runtime on these paths.
    pub fn runtime(&self) -> anyhow::Result<Runtime> {
        Ok(Runtime::new(self.paths(), MonitorCommand::current_exe()?))
    }
}
