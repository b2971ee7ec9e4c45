#!/usr/bin/env bash
# Installs what Tally needs, then runs the whole test suite (unit and integration tests
# against the real FFmpeg, lavapipe and ffprobe) in both builds: the default one with the
# desktop app, and the headless one (--no-default-features) that servers and containers run.
set -euo pipefail
cd "$(dirname "$0")/.."
source packaging/install-deps.sh
cargo test --release
cargo test --release --no-default-features
