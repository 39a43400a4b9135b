//! `rcompose config`: load, validate and print the normalized project.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use rcompose_spec::{LoadError, config_hash, config_json, emit};

use crate::ProjectArgs;

/// Options of `rcompose config`.
#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Yaml)]
    format: Format,
    /// Only validate; print nothing on success.
    #[arg(short, long)]
    quiet: bool,
    /// Print the service names, one per line.
    #[arg(long)]
    services: bool,
    /// Print the volume names, one per line.
    #[arg(long)]
    volumes: bool,
    /// Print the profile names, one per line.
    #[arg(long = "profiles", id = "list_profiles")]
    list_profiles: bool,
    /// Print the config hash of these services (`*` for all), as `name hash`.
    #[arg(long, value_name = "SERVICE")]
    hash: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Format {
    Yaml,
    Json,
}

/// Run the command; exit code 1 with every error when the files are invalid.
pub fn run(project: &ProjectArgs, args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let loaded = match rcompose_spec::load(&project.load_options()?) {
        Ok(l) => l,
        Err(LoadError::Invalid(diags)) => {
            match args.format {
                Format::Json => {
                    let error = anyhow::Error::from(crate::stack::InvalidStack(diags));
                    eprintln!("{}", crate::errors::json_error(&error));
                }
                Format::Yaml => eprintln!("{diags}"),
            }
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    };
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    let p = &loaded.project;
    if args.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    if args.services {
        p.services.keys().for_each(|s| println!("{s}"));
    } else if args.volumes {
        p.volumes.keys().for_each(|v| println!("{v}"));
    } else if args.list_profiles {
        loaded.all_profiles.iter().for_each(|v| println!("{v}"));
    } else if let Some(which) = &args.hash {
        let wanted: Vec<&str> = which.split(',').collect();
        for (name, svc) in &p.services {
            if wanted.contains(&"*") || wanted.contains(&name.as_str()) {
                println!("{name} {}", config_hash(svc));
            }
        }
    } else {
        let json = config_json(p);
        match args.format {
            Format::Json => println!("{}", serde_json::to_string_pretty(&json)?),
            Format::Yaml => print!("{}", emit::to_yaml(&json)),
        }
    }
    Ok(ExitCode::SUCCESS)
}
