//! Links the `rcompose` binary as a position-dependent executable.
//!
//! The binary is started for every command and again for every container
//! (its monitor, and its init with `init: true`). As a PIE it carries some
//! 53,000 dynamic relocations that the loader applies at every start, which
//! also makes about 0.9 MiB of read-only data private to each process;
//! without PIE there are none (see `docs/performance.md`). Shared libraries,
//! the heap and the stacks are still placed at random.

fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
    println!("cargo:rerun-if-changed=build.rs");
}
