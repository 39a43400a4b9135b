//! `rcompose image …`: pull, list, remove, prune, load and import images in
//! the host's content store.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rcompose_runtime::reference::Reference;
use rcompose_runtime::registry::{self, PullOptions, PullProgress};
use rcompose_runtime::store::{ImageRecord, Store};

use crate::host::HostArgs;

/// Options of `rcompose image`.
#[derive(Args, Debug)]
pub struct ImageArgs {
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Subcommand, Debug)]
enum ImageCommand {
    /// Pull an image from its registry.
    Pull(PullArgs),
    /// List stored images.
    #[command(alias = "list")]
    Ls {
        /// Print only image ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Remove images (refused while a container uses one).
    Rm {
        /// Images, by reference or id.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Delete layers and blobs no image or container uses.
    Prune,
    /// Load images from an OCI image layout directory or a `docker save` archive.
    Load {
        /// Directory or tar file.
        #[arg(short, long)]
        input: PathBuf,
        /// Name to give an image whose layout names none.
        #[arg(long)]
        name: Option<String>,
    },
    /// Create an image from a root filesystem tarball (`-` for stdin).
    Import {
        /// Tarball.
        file: PathBuf,
        /// Image name.
        name: String,
        /// Default command of the image (JSON array or a word list).
        #[arg(long)]
        cmd: Vec<String>,
    },
}

/// Options of `rcompose image pull`.
#[derive(Args, Debug, Clone)]
pub struct PullArgs {
    /// Image reference.
    pub image: String,
    /// Registry reached over plain HTTP (repeatable; loopback ones always are).
    #[arg(long = "insecure-registry")]
    pub insecure_registries: Vec<String>,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs the command.
pub fn run(host: &HostArgs, args: &ImageArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open(&host.root)?;
    match &args.command {
        ImageCommand::Pull(pull_args) => {
            let record = pull(&store, pull_args)?;
            if !pull_args.quiet {
                println!("{} {}", record.reference, record.id);
            }
        }
        ImageCommand::Ls { quiet } => list(&store, *quiet),
        ImageCommand::Rm { images } => {
            let in_use = host.runtime()?.in_use()?;
            for image in images {
                let record = store.remove(&normalize(image), &in_use)?;
                println!("Untagged: {}", record.reference);
            }
        }
        ImageCommand::Prune => {
            let in_use = host.runtime()?.in_use()?;
            let removed = store.prune(&in_use)?;
            println!("Deleted {} blobs and layers", removed.len());
        }
        ImageCommand::Load { input, name } => {
            let records = crate::image_load::load(&store, input, name.as_deref())?;
            for record in records {
                println!("Loaded image: {}", record.reference);
            }
        }
        ImageCommand::Import { file, name, cmd } => {
            let record = crate::image_load::import(&store, file, &normalize(name), cmd)?;
            println!("{}", record.id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The store key of a user-given image name (names that do not parse stay as given).
pub fn normalize(name: &str) -> String {
    Reference::parse(name).map_or_else(|_| name.to_string(), |r| r.to_string())
}

fn list(store: &Store, quiet: bool) {
    let images = store.list().unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if !quiet {
        let _ = writeln!(
            out,
            "{:<60} {:<14} {:>10}",
            "REPOSITORY:TAG", "IMAGE ID", "SIZE"
        );
    }
    for image in images {
        let short = &image.id.trim_start_matches("sha256:")[..12];
        if quiet {
            let _ = writeln!(out, "{short}");
        } else {
            let _ = writeln!(
                out,
                "{:<60} {short:<14} {:>10}",
                image.reference,
                human_size(image.size)
            );
        }
    }
}

/// Bytes as docker prints them (`4.26MB`).
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < units.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + units[unit]
    }
}

/// Pulls an image with a progress bar on a terminal. Runs a tokio runtime
/// only for the pull and shuts it down before returning, so callers may fork.
pub fn pull(store: &Store, args: &PullArgs) -> anyhow::Result<ImageRecord> {
    let reference = Reference::parse(&args.image)?;
    let bar = (!args.quiet).then(progress_bar);
    let progress = bar
        .clone()
        .map(|bar| progress_callback(bar, reference.to_string()));
    let opts = PullOptions {
        insecure_registries: args.insecure_registries.clone(),
        auth_files: rcompose_runtime::auth::auth_files(&|k| std::env::var(k).ok()),
        progress,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let result = runtime.block_on(registry::pull(store, &reference, &opts));
    drop(runtime);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(result?)
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

fn progress_callback(bar: ProgressBar, name: String) -> registry::ProgressFn {
    let seen = Arc::new(Mutex::new(std::collections::HashMap::<String, u64>::new()));
    bar.set_message(format!("pulling {name}"));
    Arc::new(move |event| match event {
        PullProgress::Layers(layers) => bar.set_length(layers.iter().map(|l| l.1).sum()),
        PullProgress::Bytes { digest, done } => {
            let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            let before = seen.insert(digest, done).unwrap_or(0);
            bar.inc(done.saturating_sub(before));
        }
        PullProgress::LayerDone(_) => {}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_like_docker() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_260_000), "4.26MB");
        assert_eq!(human_size(1_000_000), "1MB");
    }
}
