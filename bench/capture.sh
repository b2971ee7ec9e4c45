#!/usr/bin/env bash
# CPU cost of one 1280x720 30 fps screen-capture source: records a scene that shows only the
# captured screen of an Xvfb server, and the same canvas with a solid colour instead, in real
# time; the difference in CPU-seconds is the capture's cost (grab, convert, upload, draw).
# Twice: a still desktop (unchanged grabs are not redrawn) and one repainted ~30 times a second.
#
# usage: bench/capture.sh [SECONDS]     (default 30)
set -euo pipefail
seconds=${1:-30}
source "$(dirname "$0")/common.sh"

display=":$((500 + RANDOM % 400))"
Xvfb "$display" -screen 0 1280x720x24 -nolisten tcp -noreset >/dev/null 2>&1 &
xvfb_pid=$!
trap 'kill $xvfb_pid 2>/dev/null' EXIT
sleep 1
DISPLAY=$display xsetroot -solid "#336699"

scene() { # kind-specific source lines
  cat <<TOML
[canvas]
width = 1280
height = 720
fps = 30
[[sources]]
id = "s"
$1
[[scenes]]
name = "S"
[[scenes.items]]
source = "s"
TOML
}
scene 'kind = "color"
color = "#336699"' >"$out/capture-baseline.toml"
scene "kind = \"screen\"
display = \"$display\"" >"$out/capture-screen.toml"

echo "1280x720 at 30 fps, $seconds s real time"
echo "cpu_s  peak_rss_kb  wall_s  run"
measure colour-only "$tally" record "$out/capture-baseline.toml" -o "$out/capture-baseline.mp4" --overwrite --duration "${seconds}s" --quiet
measure screen-capture "$tally" record "$out/capture-screen.toml" -o "$out/capture-screen.mp4" --overwrite --duration "${seconds}s" --quiet
# Repaint the desktop continuously, alternating two colours (xsetroot's own CPU is not counted).
(while true; do
  DISPLAY=$display xsetroot -solid "#336699"
  DISPLAY=$display xsetroot -solid "#993366"
done) &
painter=$!
trap 'kill $painter $xvfb_pid 2>/dev/null' EXIT
measure screen-capture-changing "$tally" record "$out/capture-screen.toml" -o "$out/capture-changing.mp4" --overwrite \
  --duration "${seconds}s" --quiet
kill $painter
grep -h "frames:" "$out/screen-capture.log" "$out/screen-capture-changing.log"
