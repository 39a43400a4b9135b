#!/usr/bin/env bash
# Brings an example stack up (default: webapp), as root: installs what is
# missing, builds rcompose, makes the example image from Debian's
# busybox-static (no registry needed), runs `rcompose up -d --wait`, then
# prints the page's URL and `rcompose ps`.
# Usage: scripts/example.sh [EXAMPLE]   (take it down: rcompose down -f examples/EXAMPLE/compose.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
example=${1:-webapp}
scripts/setup.sh
scripts/build.sh --quiet
bin=$PWD/target/release/rcompose
scripts/example-image.sh "$bin"
file=examples/$example/compose.yaml
"$bin" up -d --wait --wait-timeout 120 -f "$file"
# The first published port, from `ps --format json`.
first=$("$bin" ps --format json -f "$file" | tr -d ' \n' | grep -o '"Publishers":\[{[^}]*}' | head -1 || true)
port=$(printf '%s' "$first" | grep -o '"PublishedPort":[0-9]*' | cut -d: -f2 || true)
host=$(printf '%s' "$first" | grep -o '"URL":"[^"]*"' | cut -d'"' -f4 || true)
if [ -n "$port" ]; then echo "page: http://${host:-127.0.0.1}:$port/"; fi
"$bin" ps -f "$file"
