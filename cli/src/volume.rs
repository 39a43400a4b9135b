//! `rcompose volume …`: named volumes on this host, the way `docker volume`
//! handles them (create, ls, inspect, rm, prune), and the volume part of
//! `container create` (`--volume`, `--tmpfs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use rcompose_runtime::config::{COPY_UP_OPTION, MountSpec};
use rcompose_runtime::manager::Runtime;
use rcompose_volumes::plan::{self, PlannedMount, Propagation};
use rcompose_volumes::store::{LABEL_CONTAINER, LABEL_TARGET};
use rcompose_volumes::{LinuxMounter, LocalDriver, VolumeRecord, VolumeRequest, Volumes};

use crate::host::HostArgs;
use crate::key_values;

/// The volume manager on the real host.
pub type Vols = Volumes<LocalDriver<LinuxMounter>>;

/// Options of `rcompose volume`.
#[derive(Args, Debug)]
pub struct VolumeArgs {
    #[command(subcommand)]
    command: VolumeCommand,
}

#[derive(Subcommand, Debug)]
enum VolumeCommand {
    /// Create a volume.
    Create {
        /// Driver (only `local`).
        #[arg(short, long)]
        driver: Option<String>,
        /// Driver option `KEY=VALUE`: type, device, o.
        #[arg(short, long = "opt")]
        opts: Vec<String>,
        /// Label `KEY=VALUE` (repeatable).
        #[arg(long = "label")]
        labels: Vec<String>,
        /// Name.
        name: String,
    },
    /// List volumes.
    Ls {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a volume's record as JSON.
    Inspect {
        /// Name.
        name: String,
    },
    /// Remove volumes (refused while a container uses them).
    Rm {
        /// Names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove unused anonymous volumes (with `--all`, every unused volume).
    Prune {
        /// Named volumes too.
        #[arg(short, long)]
        all: bool,
    },
}

/// Runs the command.
pub fn run(host: &HostArgs, args: &VolumeArgs) -> anyhow::Result<ExitCode> {
    let vols = host.volumes();
    match &args.command {
        VolumeCommand::Create {
            driver,
            opts,
            labels,
            name,
        } => {
            let request = VolumeRequest {
                name: name.clone(),
                driver: driver.clone(),
                driver_opts: key_values(opts)?,
                labels: key_values(labels)?,
                external: false,
            };
            rcompose_volumes::validate(&request)?;
            println!("{}", vols.ensure(&request)?.name);
        }
        VolumeCommand::Ls { json } => list(&vols, *json)?,
        VolumeCommand::Inspect { name } => {
            println!("{}", serde_json::to_string_pretty(&vols.inspect(name)?)?);
        }
        VolumeCommand::Rm { names } => {
            let runtime = host.runtime()?;
            for name in names {
                let users = users_of(&runtime, &vols, name)?;
                vols.remove(name, &users)?;
                println!("{name}");
            }
        }
        VolumeCommand::Prune { all } => {
            let runtime = host.runtime()?;
            let in_use = volumes_in_use(&runtime, &vols)?;
            let pruned = vols.prune(*all, None, &in_use)?;
            for name in &pruned.removed {
                println!("{name}");
            }
            for error in &pruned.errors {
                eprintln!("error: {error}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list(vols: &Vols, json: bool) -> anyhow::Result<()> {
    let records = vols.list()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(());
    }
    println!("{:<8} {:<66} MOUNTPOINT", "DRIVER", "NAME");
    for record in records {
        println!(
            "{:<8} {:<66} {}",
            record.driver,
            record.name,
            record.mountpoint.display()
        );
    }
    Ok(())
}

/// The volumes a container mounts: those whose data directory is the
/// source (or contains the source) of one of its mounts.
fn mounted_by(record_mounts: &[MountSpec], volume: &VolumeRecord) -> bool {
    record_mounts
        .iter()
        .any(|m| Path::new(&m.source).starts_with(&volume.mountpoint))
}

/// Names of the containers that use `name`.
pub(crate) fn users_of(runtime: &Runtime, vols: &Vols, name: &str) -> anyhow::Result<Vec<String>> {
    let volume = vols.inspect(name)?;
    Ok(runtime
        .list()?
        .into_iter()
        .filter(|c| mounted_by(&c.record.config.mounts, &volume))
        .map(|c| c.record.id)
        .collect())
}

fn volumes_in_use(runtime: &Runtime, vols: &Vols) -> anyhow::Result<BTreeSet<String>> {
    let containers = runtime.list()?;
    Ok(vols
        .list()?
        .into_iter()
        .filter(|v| {
            containers
                .iter()
                .any(|c| mounted_by(&c.record.config.mounts, v))
        })
        .map(|v| v.name)
        .collect())
}

/// The volume options of `container create` and `container run`.
#[derive(Args, Debug, Default)]
pub struct ContainerVolumeArgs {
    /// Mount `[SOURCE:]TARGET[:ro]`: a volume name, a host path (relative
    /// to the current directory), or no source for an anonymous volume.
    #[arg(short = 'v', long = "volume")]
    pub volumes: Vec<String>,
    /// Mount a tmpfs `TARGET[:size=…,mode=…]`.
    #[arg(long)]
    pub tmpfs: Vec<String>,
}

/// Turns `--volume` and `--tmpfs` into the runtime's mounts, creating named
/// and anonymous volumes (the content of the image is copied into an empty
/// one when the container starts).
pub fn mounts(
    host: &HostArgs,
    name: &str,
    args: &ContainerVolumeArgs,
) -> anyhow::Result<Vec<MountSpec>> {
    let vols = host.volumes();
    let cwd = std::env::current_dir()?;
    let mut planned = Vec::new();
    for spec in &args.volumes {
        planned.push(parse_volume(spec, &cwd)?);
    }
    for entry in &args.tmpfs {
        planned.push(plan::parse_tmpfs(name, entry)?);
    }
    let mut out = Vec::new();
    for mount in planned {
        out.push(to_mount_spec(&vols, name, &mount, false)?);
    }
    out.sort_by_key(|m| Path::new(&m.target).components().count());
    Ok(out)
}

/// The runtime mount of a planned one, making its volume or host directory
/// ready. With `reuse_anonymous`, an anonymous volume left by an earlier
/// container of the same name at the same target is mounted again (a stack
/// replica keeps its anonymous volumes across a recreate).
pub(crate) fn to_mount_spec(
    vols: &Vols,
    container: &str,
    mount: &PlannedMount,
    reuse_anonymous: bool,
) -> anyhow::Result<MountSpec> {
    let host: Option<PathBuf> = match mount {
        PlannedMount::Named { volume, .. } => {
            vols.ensure(&VolumeRequest {
                name: volume.clone(),
                ..VolumeRequest::default()
            })?;
            Some(vols.mount(volume)?)
        }
        PlannedMount::Anonymous { target, .. } => {
            let labels = BTreeMap::from([
                (LABEL_CONTAINER.to_string(), container.to_string()),
                (LABEL_TARGET.to_string(), target.clone()),
            ]);
            let mut found = None;
            if reuse_anonymous {
                found = vols
                    .anonymous()?
                    .into_iter()
                    .find(|v| labels.iter().all(|(k, val)| v.labels.get(k) == Some(val)));
            }
            let record = match found {
                Some(record) => record,
                None => vols.create_anonymous(&labels)?,
            };
            Some(vols.mount(&record.name)?)
        }
        PlannedMount::Bind {
            source,
            target,
            create_host_path,
            ..
        } => {
            if !source.exists() {
                if !create_host_path {
                    bail!(
                        "bind source {} of {target} does not exist (bind.create_host_path is false)",
                        source.display()
                    );
                }
                std::fs::create_dir_all(source)
                    .with_context(|| format!("create {}", source.display()))?;
            }
            Some(source.clone())
        }
        PlannedMount::Tmpfs { .. } => None,
    };
    let entry = mount.mount_spec(host.as_deref())?;
    let mut options = entry.options;
    if entry.copy_up {
        options.push(COPY_UP_OPTION.into());
    }
    Ok(MountSpec {
        target: entry.target,
        source: entry.source,
        kind: entry.kind,
        options,
    })
}

/// `[SOURCE:]TARGET[:ro|rw]`, as `docker run -v` reads it.
fn parse_volume(spec: &str, cwd: &Path) -> anyhow::Result<PlannedMount> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => (None, *target, ""),
        [a, b] if b.starts_with('/') => (Some(*a), *b, ""),
        [target, mode] => (None, *target, *mode),
        [source, target, mode] => (Some(*source), *target, *mode),
        _ => bail!("invalid volume {spec:?}: use [SOURCE:]TARGET[:ro]"),
    };
    let read_only = match mode {
        "" | "rw" => false,
        "ro" => true,
        other => bail!("invalid volume {spec:?}: unknown mode {other:?}"),
    };
    if !target.starts_with('/') || target == "/" {
        bail!("invalid volume {spec:?}: the target must be an absolute path other than /");
    }
    let target = target.to_string();
    Ok(match source {
        None => PlannedMount::Anonymous {
            target,
            read_only,
            nocopy: false,
        },
        Some(s) if s.starts_with('/') || s.starts_with('.') || s.starts_with('~') => {
            PlannedMount::Bind {
                source: plan::normalize_lexically(&cwd.join(s)),
                target,
                read_only,
                propagation: Propagation::Rprivate,
                create_host_path: true,
                recursive: true,
                selinux: None,
            }
        }
        Some(volume) => PlannedMount::Named {
            volume: volume.to_string(),
            target,
            read_only,
            nocopy: false,
            subpath: None,
        },
    })
}

/// Removes the anonymous volumes created for `container` (`rm --volumes`).
pub fn remove_anonymous(host: &HostArgs, container: &str) -> anyhow::Result<()> {
    let vols = host.volumes();
    for volume in vols.anonymous()? {
        if volume.labels.get(LABEL_CONTAINER).map(String::as_str) == Some(container) {
            vols.remove(&volume.name, &[])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_arguments_read_as_docker_run_reads_them() {
        let cwd = Path::new("/work/app");
        match parse_volume("./data:/srv:ro", cwd).unwrap() {
            PlannedMount::Bind {
                source,
                target,
                read_only,
                ..
            } => {
                assert_eq!(
                    (source, target.as_str(), read_only),
                    (PathBuf::from("/work/app/data"), "/srv", true)
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(parse_volume("db:/var/lib/db", cwd).unwrap(), PlannedMount::Named { ref volume, .. } if volume == "db")
        );
        assert!(matches!(
            parse_volume("/cache", cwd).unwrap(),
            PlannedMount::Anonymous { .. }
        ));
        assert!(parse_volume("db:relative", cwd).is_err());
        assert!(parse_volume("db:/x:rx", cwd).is_err());
    }
}
