#!/usr/bin/env bash
# Installs what Tally needs, then runs the whole test suite (unit and integration tests
# against the real FFmpeg, lavapipe and ffprobe).
set -euo pipefail
cd "$(dirname "$0")/.."
source packaging/install-deps.sh
cargo test --release
