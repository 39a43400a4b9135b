//! The per-container monitor as a binary of its own, for the runtime's tests
//! (the product runs it as a hidden sub-command of `rcompose`).
//!
//! `rcompose-test-monitor __monitor <state_root> <run_dir> <id>` runs a monitor;
//! (and watches the run it starts, having no `-monitor` program beside it);
//! `rcompose-test-monitor start <state_root> <run_dir> <id>` starts a created
//! container and exits, like a short-lived `rcompose up` would.

use rcompose_runtime::container::Paths;
use rcompose_runtime::manager::{MonitorCommand, Runtime};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("start") if args.len() == 5 => {
            let paths = Paths {
                state_root: args[2].clone().into(),
                run_dir: args[3].clone().into(),
            };
            let monitor = MonitorCommand::current_exe().expect("own path");
            match Runtime::new(paths, monitor).start(&args[4]) {
                Ok(pid) => println!("{pid}"),
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            }
        }
        Some(rcompose_runtime::probe::PROBE_ARG) => {
            std::process::exit(rcompose_runtime::probe::helper_main(&args[2..]))
        }
        Some(rcompose_runtime::monitor::SUPERVISE_ARG) => {
            std::process::exit(rcompose_runtime::monitor::supervise_main(&args[2..]))
        }
        _ => std::process::exit(rcompose_runtime::monitor::main(&args[2..])),
    }
}
