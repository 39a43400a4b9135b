#!/usr/bin/env bash
# Brings the example stack up with the best command that exists so far:
# validates and prints the normalized project (`rcompose config`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo run --quiet --release -p rcompose-cli -- -f "examples/${1:-webapp}/compose.yaml" config
