#!/usr/bin/env bash
# Installs what Tally needs, then records 10 seconds of the bundled demo scene headless and
# writes a snapshot of it. (The desktop app is not built yet; see README.)
set -euo pipefail
cd "$(dirname "$0")/.."
source packaging/install-deps.sh
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
cargo run --release -- check scenes/demo.toml
cargo run --release -- snapshot scenes/demo.toml -o demo.png --frame 45
cargo run --release -- record scenes/demo.toml -o demo.mp4 --duration 10s
echo "Wrote demo.mp4 and demo.png"
