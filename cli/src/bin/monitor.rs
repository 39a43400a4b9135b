//! `rcompose-monitor`: what watches a running container once `rcompose`'s
//! monitor has started it (see `rcompose_runtime::monitor`). It holds only
//! the watching part of the monitor, so a container's monitor maps far less
//! code than the whole of `rcompose` while it waits. It is found beside the
//! `rcompose` executable; without it, `rcompose` watches the run itself.

use std::process::ExitCode;

use rcompose_runtime::monitor::{SUPERVISE_ARG, supervise_main};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let code = match args.get(1) {
        Some(arg) if arg == SUPERVISE_ARG => supervise_main(&args[2..]),
        _ => {
            eprintln!("rcompose-monitor is started by rcompose's container monitors, not by hand");
            2
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
