#!/usr/bin/env bash
# End-to-end benchmark of rcompose's container runtime and registry pull, on this
# host, against the tools people compare it with:
#   1. `rcompose oci run` vs `runc run` vs `crun run` of a busybox /bin/true bundle
#      (create, start, wait, delete: the whole lifecycle of a short container);
#   2. `rcompose image pull` vs `skopeo copy` of a busybox image from a registry
#      this script starts on 127.0.0.1.
# Goals: `rcompose oci run` within 2x of the faster of runc and crun, and under
# 20 ms median. Nothing leaves 127.0.0.1.
#
# Usage: bench/runtime.sh [--quick] [--help]
#   --quick          fewer runs (10 timed, 2 warmup) for a smoke check
# Environment:
#   RCOMPOSE_BIN     use this rcompose binary instead of building one
#   BENCH_RUNS       timed runs per command (default 50; 10 with --quick)
#   BENCH_WARMUP     warmup runs per command (default 5; 2 with --quick)
#
# Progress and hyperfine's own output go to stderr; the summary goes to stdout as
# markdown, so `bench/runtime.sh > results.md` keeps just the results.
# Runs as root (it creates containers); missing Debian packages are installed with
# apt-get. Everything it creates (temp dir, container state, the registry process)
# is removed on exit, also on failure or Ctrl-C.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

log() { echo "bench: $*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

quick=0
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$quick" -eq 1 ]; then
  runs=${BENCH_RUNS:-10} warmup=${BENCH_WARMUP:-2}
else
  runs=${BENCH_RUNS:-50} warmup=${BENCH_WARMUP:-5}
fi
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer, not '$runs'"
[[ $warmup =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a non-negative integer, not '$warmup'"

# ---------------------------------------------------------------- prerequisites

is_static() { [ -x "$1" ] && ! ldd "$1" >/dev/null 2>&1; }

# Installs the Debian packages this script needs, only those missing, only as root.
ensure_packages() {
  local missing=() pair
  for pair in hyperfine:hyperfine jq:jq runc:runc crun:crun skopeo:skopeo \
    docker-registry:docker-registry gzip:gzip; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  is_static /bin/busybox || missing+=(busybox-static)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    die "missing packages: ${missing[*]}; run as root so this script can apt-get install them, or install them yourself"
  fi
  log "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

ensure_packages
[ "$(id -u)" -eq 0 ] || die "must run as root: it creates containers with rcompose, runc and crun"

# ---------------------------------------------------------------- cleanup

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rcompose-bench.XXXXXX")
id=rcbench-$$            # container ids are "$id-<runtime>", unique to this run
registry_pid=""
rcompose=""

# Best-effort: every step runs even when an earlier one fails.
cleanup() {
  local status=$?
  set +e
  if [ -n "$registry_pid" ]; then
    kill "$registry_pid" 2>/dev/null
    wait "$registry_pid" 2>/dev/null
  fi
  [ -n "$rcompose" ] && "$rcompose" oci --root "$tmp/state/rcompose" delete --force "$id-rcompose" >/dev/null 2>&1
  command -v runc >/dev/null && runc --root "$tmp/state/runc" delete --force "$id-runc" >/dev/null 2>&1
  command -v crun >/dev/null && crun --root "$tmp/state/crun" delete --force "$id-crun" >/dev/null 2>&1
  # A runtime killed mid-run may leave its container's cgroup behind: runc names
  # it after the id, libcontainer ":youki:<id>".
  find /sys/fs/cgroup -depth -type d -name "*$id-*" -exec rmdir {} \; 2>/dev/null
  awk -v t="$tmp" '$5 == t || index($5, t "/") == 1 { print $5 }' /proc/self/mountinfo |
    sort -r | while read -r m; do umount -l "$m"; done
  rm -rf --one-file-system "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- rcompose binary

rcompose=$(rcompose_binary "$repo") || exit 1

# ---------------------------------------------------------------- bundle

# A root filesystem with only a static busybox and the applets we run.
make_rootfs() {
  local root=$1
  mkdir -p "$root"/{bin,proc,sys,dev,tmp,etc}
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  ln -s busybox "$root/bin/true"
  ln -s busybox "$root/bin/sh"
}

bundle=$tmp/bundle
make_rootfs "$bundle/rootfs"
(cd "$bundle" && runc spec)
jq '.process.terminal = false | .process.args = ["/bin/true"]' "$bundle/config.json" >"$bundle/config.json.new"
mv "$bundle/config.json.new" "$bundle/config.json"
mkdir -p "$tmp/state"

# ---------------------------------------------------------------- helpers

declare -A skipped=()   # "run-<tool>" or "pull-<tool>" -> first line of its error
declare -A versions=()  # tool name -> first line of its --version

# Quotes a command line for hyperfine -N, which splits on whitespace like a shell.
quote() { printf '%q ' "$@"; }

# Runs a command once; on failure records why, so the tool is left out of timing.
check() {
  local name=$1 rc=0
  shift
  "$@" </dev/null >/dev/null 2>"$tmp/check-$name.err" || rc=$?
  [ "$rc" -eq 0 ] && return 0
  local first
  first=$(grep -m1 . "$tmp/check-$name.err" || true)
  first=${first//|//}
  skipped[$name]=${first:-exit status $rc}
  log "$name: not runnable here: ${skipped[$name]}"
  return 1
}

# Prints "name<TAB>median<TAB>mean<TAB>stddev<TAB>min<TAB>max<TAB>cpu" in ms per
# result; cpu is the mean user + system time of the command and its children.
results_tsv() {
  jq -r '.results[] | [.command, (.median, .mean, .stddev, .min, .max, .user + .system | . * 1000)] | @tsv' "$1"
}

median_ms() {
  jq -r --arg n "$2" '.results[] | select(.command == $n) | .median * 1000' "$1"
}

# Markdown rows for the tools that ran, then one per tool that was skipped.
# Arguments: hyperfine json, first column title, skipped-key prefix, tools.
table() {
  local json=$1 first=$2 prefix=$3
  shift 3
  echo "| $first | median ms | mean ± σ ms | min ms | max ms | CPU ms (user+sys) |"
  echo "|---|---:|---:|---:|---:|---:|"
  if [ -s "$json" ]; then
    results_tsv "$json" | while IFS=$'\t' read -r name median mean sd min max cpu; do
      printf '| %s (%s) | %.1f | %.1f ± %.1f | %.1f | %.1f | %.1f |\n' \
        "$name" "${versions[$name]}" "$median" "$mean" "$sd" "$min" "$max" "$cpu"
    done
  fi
  local name
  for name in "$@"; do
    [ -n "${skipped[$prefix-$name]:-}" ] &&
      printf '| %s (%s) | not runnable here: %s | | | | |\n' "$name" "${versions[$name]}" "${skipped[$prefix-$name]}"
  done
  return 0
}

versions[rcompose]=$("$rcompose" --version 2>/dev/null | head -1 || echo "rcompose")
versions[runc]=$(runc --version | head -1)
versions[crun]=$(crun --version | head -1)
versions[skopeo]=$(skopeo --version | head -1)

# ---------------------------------------------------------------- 1. run /bin/true

declare -A run_cmd=(
  [rcompose]=$(quote "$rcompose" oci --root "$tmp/state/rcompose" run --bundle "$bundle" "$id-rcompose")
  [runc]=$(quote runc --root "$tmp/state/runc" run --bundle "$bundle" "$id-runc")
  [crun]=$(quote crun --root "$tmp/state/crun" run --bundle "$bundle" "$id-crun")
)
argv=() names=() cmds=()
for name in rcompose runc crun; do
  # The string is printf %q output, so eval reads it back as the same words.
  eval "argv=(${run_cmd[$name]})"
  if check "run-$name" "${argv[@]}"; then
    names+=(-n "$name") cmds+=("${run_cmd[$name]}")
  else
    "${argv[0]}" --root "$tmp/state/$name" delete --force "$id-$name" >/dev/null 2>&1 || true
  fi
done
[ -z "${skipped[run-rcompose]:-}" ] || die "rcompose oci run does not work here: ${skipped[run-rcompose]}"

run_json=$tmp/run.json
log "timing container run of /bin/true: ${#cmds[@]} runtimes, $runs runs each after $warmup warmup"
hyperfine -N --warmup "$warmup" --runs "$runs" --export-json "$run_json" "${names[@]}" "${cmds[@]}" >&2

# ---------------------------------------------------------------- 2. pull

# An OCI image layout of the busybox rootfs, tagged "1", made by hand (no umoci).
make_oci_layout() {
  local layout=$1 work=$tmp/image-build arch
  case $(uname -m) in
    x86_64) arch=amd64 ;;
    aarch64) arch=arm64 ;;
    *) arch=$(dpkg --print-architecture) ;;
  esac
  mkdir -p "$work" "$layout/blobs/sha256"
  make_rootfs "$work/rootfs"
  (cd "$work/rootfs" && tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
    -cf "$work/layer.tar" -- *)
  local diff_id layer_hex layer_size config_hex config_size manifest_hex manifest_size
  diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
  gzip -n -c "$work/layer.tar" >"$work/layer.tar.gz"
  layer_size=$(stat -c %s "$work/layer.tar.gz")
  layer_hex=$(add_blob "$layout" "$work/layer.tar.gz")
  printf '{"architecture":"%s","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$arch" "$diff_id" >"$work/config.json"
  config_size=$(stat -c %s "$work/config.json")
  config_hex=$(add_blob "$layout" "$work/config.json")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
    "$config_hex" "$config_size" "$layer_hex" "$layer_size" >"$work/manifest.json"
  manifest_size=$(stat -c %s "$work/manifest.json")
  manifest_hex=$(add_blob "$layout" "$work/manifest.json")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"1"}}]}' \
    "$manifest_hex" "$manifest_size" >"$layout/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
  rm -rf "$work"
}

# Moves a file into the layout's blob store under its digest; prints the hex.
add_blob() {
  local hex
  hex=$(sha256sum "$2" | cut -d' ' -f1)
  mv "$2" "$1/blobs/sha256/$hex"
  echo "$hex"
}

# Starts docker-registry on 127.0.0.1 on a port the kernel picks; sets $port.
start_registry() {
  mkdir -p "$tmp/registry"
  cat >"$tmp/registry.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $tmp/registry
http:
  addr: 127.0.0.1:0
  secret: rcompose-bench
EOF
  docker-registry serve "$tmp/registry.yml" >"$tmp/registry.log" 2>&1 &
  registry_pid=$!
  port=""
  local _
  for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$tmp/registry.log" | head -1)
    [ -n "$port" ] && return 0
    kill -0 "$registry_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$tmp/registry.log" >&2
  die "docker-registry did not start"
}

# skopeo reads registries.conf (mirrors, search lists): point it at an empty one.
export CONTAINERS_REGISTRIES_CONF=$tmp/registries.conf
: >"$CONTAINERS_REGISTRIES_CONF"

log "building the busybox image and starting a registry on 127.0.0.1"
make_oci_layout "$tmp/layout"
start_registry
ref=127.0.0.1:$port/bench/busybox:1
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$tmp/layout:1" "docker://$ref" >&2
image_size=$(du -sb --apparent-size "$tmp/layout/blobs" | cut -f1)

pull_dir=$tmp/pull
declare -A pull_cmd=(
  [rcompose]=$(quote "$rcompose" --root "$pull_dir/rcompose-root" --run-dir "$pull_dir/rcompose-run" image pull -q "$ref")
  [skopeo]=$(quote skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$ref" "oci:$pull_dir/skopeo-oci:1")
)
declare -A pull_prepare=(
  [rcompose]=$(quote rm -rf "$pull_dir/rcompose-root" "$pull_dir/rcompose-run")
  [skopeo]=$(quote rm -rf "$pull_dir/skopeo-oci")
)
names=() cmds=() prepares=()
for name in rcompose skopeo; do
  eval "argv=(${pull_cmd[$name]})"
  if check "pull-$name" "${argv[@]}"; then
    names+=(-n "$name") cmds+=("${pull_cmd[$name]}") prepares+=(--prepare "${pull_prepare[$name]}")
  fi
done

pull_json=$tmp/pull.json
if [ ${#cmds[@]} -gt 0 ]; then
  log "timing pull of $ref: ${#cmds[@]} tools, $runs runs each after $warmup warmup"
  hyperfine -N --warmup "$warmup" --runs "$runs" "${prepares[@]}" --export-json "$pull_json" \
    "${names[@]}" "${cmds[@]}" >&2
fi

# ---------------------------------------------------------------- summary

rc_ms=$(median_ms "$run_json" rcompose)
fastest_name="" fastest_ms=""
for name in runc crun; do
  ms=$(median_ms "$run_json" "$name")
  [ -n "$ms" ] || continue
  if [ -z "$fastest_ms" ] || awk -v a="$ms" -v b="$fastest_ms" 'BEGIN { exit !(a < b) }'; then
    fastest_name=$name fastest_ms=$ms
  fi
done
verdict() { if awk "BEGIN { exit !($1) }"; then echo "**met**"; else echo "**missed**"; fi; }

cgroup_layout() {
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo "v2 (unified)"
  elif [ -d /sys/fs/cgroup/unified ]; then echo "hybrid (v1 controllers + v2 at /sys/fs/cgroup/unified)"
  else echo "v1"; fi
}

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo
echo "## rcompose runtime benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- machine: $(nproc) cores (${cpu:-unknown cpu}), $(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo) MiB RAM, kernel $(uname -r)"
echo "- cgroups: $(cgroup_layout)"
echo "- load average (1, 5, 15 min) at start: $load_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- hyperfine $(hyperfine --version | awk '{ print $2 }'), $runs timed runs per command after $warmup warmup runs, no shell (-N)"
echo "- wall-clock times move with whatever else runs on the machine; the CPU column"
echo "  (mean user + system time of the command and its children) is steadier"
echo
echo "### Container lifecycle: \`run\` of a busybox \`/bin/true\` bundle (create, start, wait, delete)"
echo
table "$run_json" runtime run rcompose runc crun
echo
if [ -n "$fastest_ms" ]; then
  ratio=$(awk -v a="$rc_ms" -v b="$fastest_ms" 'BEGIN { printf "%.2f", a / b }')
  echo "rcompose / fastest of runc and crun ($fastest_name): **${ratio}x**"
  echo
  echo "- goal: within 2x of the faster of runc and crun: $(verdict "$ratio <= 2") (${ratio}x)"
else
  echo "rcompose / fastest of runc and crun: n/a (neither runs here)"
  echo
  echo "- goal: within 2x of the faster of runc and crun: not measurable here"
fi
echo "- goal: median under 20 ms: $(verdict "$rc_ms < 20") ($(printf '%.1f' "$rc_ms") ms)"
echo
echo "### Image pull from a registry on 127.0.0.1 (busybox, one layer, $((image_size / 1024)) KiB of blobs)"
echo
table "$pull_json" tool pull rcompose skopeo
echo
echo "The two do different work: \`rcompose image pull\` fetches manifest, config and layer"
echo "into its content store and also unpacks the layer into a root filesystem;"
echo "\`skopeo copy … oci:DIR\` only fetches and writes the blobs into an OCI layout."
echo "Each run starts from an empty destination (hyperfine --prepare wipes it)."
if [ -n "${skipped[pull-rcompose]:-}" ]; then
  die "rcompose image pull does not work here: ${skipped[pull-rcompose]}"
fi
