#!/usr/bin/env bash
# The whole test suite: setup, formatting, lints, then every test of the workspace.
# Ends with one summary line, "tests: N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# A clean checkout gains nothing from incremental state, which is gigabytes.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# Root tests are #[ignore]d so that a run without root reports them as skipped;
# as root they run.
extra=()
if [ "$(id -u)" -eq 0 ]; then extra=(-- --include-ignored); fi
cargo test --workspace --all-targets --locked "${extra[@]}" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { p += $4; f += $6; s += $8 }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
