#!/usr/bin/env bash
# Builds the release binaries: target/release/rcompose, and beside it
# target/release/rcompose-monitor, which watches each running container.
#
# rcompose-monitor is linked as one static executable: a process keeps every
# page of code it ever ran mapped, and a static monitor maps no loader and
# only the parts of the C library it calls (VmRSS about 2 MiB while it
# watches, against 2.7 MiB dynamically linked; see docs/performance.md).
# For that, libseccomp is linked from its static archive (libseccomp-dev), in
# rcompose too. A plain `cargo build --release` works as well; its monitor is
# dynamically linked.
# Usage: scripts/build.sh [--quiet]
set -euo pipefail
cd "$(dirname "$0")/.."
quiet=()
[ "${1:-}" = --quiet ] && quiet=(--quiet)
archive=$(cc -print-file-name=libseccomp.a)
[ -f "$archive" ] || { echo "build: libseccomp.a not found (install libseccomp-dev)" >&2; exit 1; }
export LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH
LIBSECCOMP_LIB_PATH=$(dirname "$archive")
cargo build "${quiet[@]}" --release -p rcompose-cli
# The binary alone again, with the C library linked in: no other crate is
# built anew (the flags apply to the final link only).
cargo rustc "${quiet[@]}" --release -p rcompose-cli --bin rcompose-monitor -- \
  -C target-feature=+crt-static -C relocation-model=static
