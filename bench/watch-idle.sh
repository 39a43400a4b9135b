#!/usr/bin/env bash
# Idle cost of the `rcompose watch` controller: a 20-service stack is brought
# up, then the controller runs for DURATION seconds (default 60) with nothing
# to do but its 1 s container poll and its 30 s resync. Prints its peak and
# final RSS and its CPU use (user + system time over wall time) as markdown.
# Goal: under 20 MiB RSS and under 1 % of one core.
#
# Run as root. Everything lives in one temp dir (state root, run dir, stack)
# inside a network namespace of its own, and is removed on exit, together
# with the controller (killed by its pid) and the stack (`down -v`).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-60}
services=${BENCH_SERVICES:-20}
if [ "$(id -u)" -ne 0 ]; then
  echo "watch-idle: run as root (it creates containers)" >&2
  exit 1
fi
if [ -z "${RCOMPOSE_BIN:-}" ]; then
  scripts/build.sh --quiet
  RCOMPOSE_BIN=$PWD/target/release/rcompose
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/rcompose-watch-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
export RCOMPOSE_ROOT=$work/state RCOMPOSE_RUN_DIR=$work/run WORK=$work RCOMPOSE_BIN DURATION=$duration
scripts/example-image.sh "$RCOMPOSE_BIN" >&2
{
  echo "name: idle"
  echo "services:"
  for i in $(seq 1 "$services"); do
    printf '  s%d:\n    image: 127.0.0.1:5000/rcompose/busybox:latest\n    init: true\n    stop_grace_period: 1s\n    command: ["sleep", "3600"]\n' "$i"
  done
} >"$work/compose.yaml"
# The rest runs in a new network namespace: the bridges and rules it makes
# vanish with it.
unshare -n bash -s <<'INNER'
set -euo pipefail
ip link set lo up
bin=$RCOMPOSE_BIN
file=$WORK/compose.yaml
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  "$bin" down -v -t 1 --progress quiet -f "$file" >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$bin" up -d --wait --progress quiet -f "$file"
"$bin" watch --format json -f "$file" >"$WORK/watch.log" 2>&1 &
pid=$!
sleep 5   # the first pass and its settling are not idle time
ticks=$(getconf CLK_TCK)
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
start_cpu=$(cpu)
start=$(date +%s.%N)
sleep "$DURATION"
end_cpu=$(cpu)
end=$(date +%s.%N)
rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")
passes=$(wc -l <"$WORK/watch.log")
awk -v c0="$start_cpu" -v c1="$end_cpu" -v t0="$start" -v t1="$end" -v hz="$ticks" \
    -v rss="$rss" -v hwm="$hwm" -v n="$(grep -c '^  s[0-9]*:$' "$file")" -v passes="$passes" 'BEGIN {
  cpu = (c1 - c0) / hz / (t1 - t0) * 100
  printf "| services | idle seconds | CPU (%% of one core) | RSS (MiB) | peak RSS (MiB) | passes |\n"
  printf "|---:|---:|---:|---:|---:|---:|\n"
  printf "| %d | %.0f | %.2f | %.1f | %.1f | %d |\n", n, t1 - t0, cpu, rss / 1024, hwm / 1024, passes
}'
INNER
