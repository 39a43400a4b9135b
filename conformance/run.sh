#!/usr/bin/env bash
# Runs the OCI runtime-tools validation suite against an OCI runtime.
#
#   conformance/run.sh [rcompose|runc|/path/to/runtime] [TEST...]
#
# rcompose (the default) is driven through conformance/rcompose-oci and runc
# through conformance/runc-oci; any other runtime binary is called as given.
# Each test gets its own state root (OCI_STATE_ROOT -> --root) and its own
# TMPDIR (where the tests put their bundles); both are removed afterwards,
# with any container left in the root force-deleted first.
#
# Environment:
#   RT_SRC        runtime-tools source tree holding validation/ and
#                 cmd/runtimetest/ (Debian's golang-github-opencontainers-
#                 runtime-tools-dev ships only the library packages, see
#                 docs/conformance.md). Default: the Debian tree if it has
#                 validation/, else /tmp/runtime-tools-src.
#   TEST_TIMEOUT  seconds per test (default 30)
#   LOG_DIR       keep each test's TAP output here (default: discarded)
#   RCOMPOSE_BIN  rcompose binary (default: target/release/rcompose; built
#                 with cargo when missing)
#   NO_INSTALL=1  do not apt-get install missing Debian packages
#
# Output: one line per test, "STATUS name ok=N not_ok=N skip=N [first
# failing line]", then "N of M tests passed, K TAP assertions failed".
# STATUS is PASS, FAIL (a "not ok", or a non-zero exit), DIAG (no TAP
# assertion but an error diagnostic: the hook tests report that way), or
# TIMEOUT. Exit status: 0 when every test passed, 1 otherwise.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
runtime_arg=${1:-rcompose}
[ $# -gt 0 ] && shift
timeout_s=${TEST_TIMEOUT:-30}
debian_src=/usr/share/gocode/src/github.com/opencontainers/runtime-tools

die() { echo "run.sh: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "must run as root (containers, cgroups, mounts)"

# --- Debian packages ----------------------------------------------------
pkgs=(golang-go golang-github-opencontainers-runtime-tools-dev
      golang-github-google-uuid-dev golang-github-hashicorp-go-multierror-dev
      golang-github-mrunalp-fileutils-dev golang-github-sirupsen-logrus-dev
      golang-github-urfave-cli-dev golang-gocapability-dev
      golang-golang-x-sys-dev golang-github-opencontainers-specs-dev runc)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# The rootfs needs a static /bin/busybox (busybox-static replaces busybox).
if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
    missing+=(busybox-static)
fi
if [ ${#missing[@]} -gt 0 ]; then
    [ "${NO_INSTALL:-}" = 1 ] && die "missing packages: ${missing[*]}"
    echo "installing: ${missing[*]}" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq "${missing[@]}" >/dev/null || die "apt-get install failed"
fi
ldd /bin/busybox >/dev/null 2>&1 && die "/bin/busybox is not static (install busybox-static)"

# --- runtime --------------------------------------------------------------
case "$runtime_arg" in
rcompose)
    export RCOMPOSE_BIN=${RCOMPOSE_BIN:-$repo/target/release/rcompose}
    if [ ! -x "$RCOMPOSE_BIN" ]; then
        (cd "$repo" && cargo build --release -p rcompose-cli) || die "cargo build failed"
    fi
    runtime=$here/rcompose-oci ;;
runc) runtime=$here/runc-oci ;;
*) runtime=$(command -v "$runtime_arg") || die "no runtime $runtime_arg" ;;
esac

# --- sources --------------------------------------------------------------
src=${RT_SRC:-}
if [ -z "$src" ]; then
    if [ -d "$debian_src/validation" ]; then src=$debian_src; else src=/tmp/runtime-tools-src; fi
fi
[ -d "$src/validation/util" ] && [ -d "$src/cmd/runtimetest" ] || die \
"no runtime-tools validation sources in '$src'.
Debian's golang-github-opencontainers-runtime-tools-dev ships only the library
packages (generate, specerror, validate, ...), not validation/ or cmd/; point
RT_SRC at a runtime-tools tree that has them (see docs/conformance.md)."

work=$(mktemp -d /tmp/rcompose-conformance.XXXXXX)
cleanup() {
    # Unmount anything a test left under the work dir (deepest first).
    awk -v w="$work" '$5 ~ "^"w {print $5}' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# GOPATH overlay: validation/ and cmd/ from $src, the library packages from
# Debian (/usr/share/gocode), our tap-go stand-in (mndrix/tap-go is not in
# Debian) and small helpers older source trees lack (conformance/overlay).
gp=$work/gopath
rt=$gp/src/github.com/opencontainers/runtime-tools
mkdir -p "$rt" "$gp/src/github.com/mndrix"
cp -a "$src/validation" "$src/cmd" "$rt/"
if [ ! -d /usr/share/gocode/src/github.com/mndrix/tap-go ]; then
    cp -a "$here/tap-go" "$gp/src/github.com/mndrix/tap-go"
fi
grep -qs 'type Info struct' "$rt"/cmd/runtimetest/mount/*.go ||
    cp "$here/overlay/cmd/runtimetest/mount/mountinfo.go" "$rt/cmd/runtimetest/mount/"
grep -qs 'func strToRlimit' "$rt"/cmd/runtimetest/*.go ||
    cp "$here/overlay/cmd/runtimetest/rlimit_linux.go" "$rt/cmd/runtimetest/"
grep -qs 'func GetRuntimeToolsNamespace' "$rt"/validation/util/*.go ||
    cp "$here/overlay/validation/util/linux_namespace_names.go" "$rt/validation/util/"

export GOPATH=$gp:/usr/share/gocode GO111MODULE=off GOPROXY=off GOFLAGS= \
    GOCACHE=$work/gocache GOTOOLCHAIN=local
bin=$work/bin
mkdir -p "$bin"
(cd "$rt" && CGO_ENABLED=0 go build -tags "netgo osusergo" -o "$bin/runtimetest" ./cmd/runtimetest) ||
    die "building runtimetest failed"
tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
    for d in "$rt"/validation/*/; do
        n=$(basename "$d")
        [ "$n" = util ] || tests+=("$n")
    done
fi
for t in "${tests[@]}"; do
    (cd "$rt" && go build -o "$bin/$t.t" "./validation/$t") || die "building $t failed"
done

# --- rootfs-amd64.tar.gz (busybox) ---------------------------------------
rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,tmp,root,var,home}
chmod 1777 "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
/bin/busybox --list-full | while read -r p; do
    [ "$p" = bin/busybox ] && continue
    mkdir -p "$rootfs/$(dirname "$p")"
    ln -sf /bin/busybox "$rootfs/$p"
done
cat > "$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat > "$rootfs/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
nogroup:x:65534:
EOF
echo "127.0.0.1 localhost" > "$rootfs/etc/hosts"
: > "$rootfs/etc/resolv.conf"
echo oci-conformance > "$rootfs/etc/hostname"
tar -C "$rootfs" -czf "$bin/rootfs-$(go env GOARCH).tar.gz" .

# --- run -----------------------------------------------------------------
[ -n "${LOG_DIR:-}" ] && mkdir -p "$LOG_DIR"
passed=0 total=0 failed_asserts=0
echo "runtime: $runtime_arg ($runtime)"
for t in "${tests[@]}"; do
    root=$work/state/$t tmp=$work/tmp/$t log=$work/logs/$t.tap
    mkdir -p "$root" "$tmp" "$(dirname "$log")"
    (cd "$bin" && RUNTIME=$runtime OCI_STATE_ROOT=$root TMPDIR=$tmp \
        timeout -k 5 "$timeout_s" "./$t.t" >"$log" 2>"$log.stderr")
    rc=$?
    # Leftover containers: force-delete whatever is still in the state root,
    # then remove cgroups the runtime left behind for them, and the fixed
    # cgroup paths the cgroup tests use (cgroups.AbsCgroupPath/RelCgroupPath).
    ids=()
    for c in "$root"/*/; do
        [ -d "$c" ] || continue
        ids+=("$(basename "$c")")
        OCI_STATE_ROOT=$root "$runtime" delete --force "${ids[-1]}" >/dev/null 2>&1
    done
    ids+=(cgrouptest testdir)
    for id in "${ids[@]}"; do
        find /sys/fs/cgroup -mindepth 2 -maxdepth 4 -type d -name "$id" 2>/dev/null |
            while read -r d; do find "$d" -depth -type d -exec rmdir {} + 2>/dev/null; done
    done
    awk -v w="$tmp" '$5 ~ "^"w {print $5}' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$root" "$tmp"

    ok=$(grep -cE '^ok [0-9]+' "$log")
    skip=$(grep -cE '^ok [0-9]+ # SKIP' "$log")
    notok=$(grep -E '^not ok [0-9]+' "$log" | grep -vc '# TODO')
    first=$(grep -E '^not ok [0-9]+' "$log" | grep -v '# TODO' | head -1)
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        status=TIMEOUT
    elif [ "$notok" -gt 0 ] || [ "$rc" != 0 ]; then
        status=FAIL
        [ -z "$first" ] && first="exit $rc: $(grep -v '^\s*$' "$log.stderr" | tail -1)"
    elif [ "$ok" -eq 0 ] && grep -q '"error"' "$log"; then
        status=DIAG
        first=$(grep -m1 '"error"' "$log" | sed 's/^ *//')
    else
        status=PASS
    fi
    total=$((total + 1))
    [ "$status" = PASS ] && passed=$((passed + 1))
    failed_asserts=$((failed_asserts + notok))
    printf '%-7s %-32s ok=%-3s not_ok=%-3s skip=%-3s %s\n' \
        "$status" "$t" "$((ok - skip))" "$notok" "$skip" "${first:0:160}"
    if [ -n "${LOG_DIR:-}" ]; then
        cp "$log" "$LOG_DIR/$t.tap"
        cp "$log.stderr" "$LOG_DIR/$t.stderr"
    fi
done
echo "$passed of $total tests passed, $failed_asserts TAP assertions failed"
[ "$passed" = "$total" ]
