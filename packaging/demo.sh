#!/usr/bin/env bash
# Installs what Tally needs, then opens the desktop app on the bundled demo collection. Where
# there is no display (a server, CI), it records 10 seconds of the demo headless instead and
# writes a snapshot of it.
set -euo pipefail
cd "$(dirname "$0")/.."
source packaging/install-deps.sh
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
cargo run --release -- check scenes/demo.toml
if [ -n "${DISPLAY:-}" ]; then
  exec cargo run --release -- scenes/demo.toml
fi
echo "demo: no display; recording the demo headless instead of opening the app"
cargo run --release -- snapshot scenes/demo.toml -o demo.png --frame 45 --overwrite
cargo run --release -- record scenes/demo.toml -o demo.mp4 --duration 10s --overwrite
echo "Wrote demo.mp4 and demo.png"
