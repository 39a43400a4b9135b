# shellcheck shell=bash
# Shared by the benchmark scripts (sourced, not run). The caller defines
# `log MESSAGE` and `die MESSAGE`.

# rcompose_binary REPO: prints the absolute path of the rcompose binary to
# measure: $RCOMPOSE_BIN when set, else a release build of REPO made now.
rcompose_binary() {
  local repo=$1 bin
  if [ -n "${RCOMPOSE_BIN:-}" ]; then
    bin=$RCOMPOSE_BIN
  else
    log "building rcompose (scripts/build.sh)"
    (cd "$repo" && scripts/build.sh >&2)
    bin=${CARGO_TARGET_DIR:-$repo/target}/release/rcompose
  fi
  [ -x "$bin" ] || die "no rcompose binary at $bin"
  realpath "$bin"
}
