//! The per-container monitor as a binary of its own, for the runtime's tests
//! (the product runs it as a hidden sub-command of `rcompose`).

fn main() {
    let args: Vec<String> = std::env::args().skip(2).collect();
    std::process::exit(rcompose_runtime::monitor::main(&args));
}
