//! Where this host's state lives (`--root`, `--run-dir`) and the runtime
//! wired to it. The monitor of each container is this same binary, re-run
//! with a hidden sub-command, and so is each network's DNS server.

use std::path::PathBuf;

use clap::Args;
use rcompose_netctl::firewall::NftFirewall;
use rcompose_netctl::manager::{DnsLauncher, NetPaths, Networks};
use rcompose_netctl::netlink::LinuxNetlink;
use rcompose_runtime::container::Paths;
use rcompose_runtime::manager::{MonitorCommand, Runtime};

/// The network manager on the real kernel.
pub type Net = Networks<LinuxNetlink, NftFirewall>;

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

    /// The network manager on these paths; its DNS daemons are this binary.
    pub fn networks(&self) -> anyhow::Result<Net> {
        let paths = NetPaths::new(&self.root, &self.run_dir);
        let launcher = DnsLauncher::current_exe()?;
        Ok(Networks::new(
            paths,
            LinuxNetlink::new(),
            NftFirewall::new(),
            launcher,
        ))
    }

    /// The volume manager on these paths (the `local` driver).
    pub fn volumes(&self) -> crate::volume::Vols {
        let paths = rcompose_volumes::VolumePaths::new(&self.root, &self.run_dir);
        rcompose_volumes::Volumes::new(rcompose_volumes::LocalDriver::new(
            paths,
            rcompose_volumes::LinuxMounter,
        ))
    }

    /// The container runtime on these paths.
    pub fn runtime(&self) -> anyhow::Result<Runtime> {
        Ok(Runtime::new(self.paths(), MonitorCommand::current_exe()?))
    }
}

/// Runs `future` to completion on a current-thread tokio runtime of its own
/// (network and registry calls are async; the commands are not).
pub fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("failed to start the async runtime: {e}"))?;
    Ok(rt.block_on(future))
}
