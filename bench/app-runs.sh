#!/usr/bin/env bash
# The app recording the demo (1280x720, 30 fps, window redrawn at the canvas rate) RUNS times
# for SECONDS each, every run in a new 1280x800 Xvfb, closed with Ctrl-C (SIGINT) as a user
# would. One line a run: exit status, CPU-seconds, the window's redraws and the engine's frame
# counts. Shows how often the window keeps up with no lagged frame, which one run cannot.
# TALLY_BIN measures another build.
#
# usage: bench/app-runs.sh [RUNS] [SECONDS]     (default 8 runs of 30 s)
set -euo pipefail
runs=${1:-8}
seconds=${2:-30}
source "$(dirname "$0")/common.sh"

echo "demo collection recorded by the app, $runs runs of $seconds s"
for run in $(seq 1 "$runs"); do
  display=":$((500 + RANDOM % 400))"
  Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp -noreset >/dev/null 2>&1 &
  xvfb_pid=$!
  sleep 1
  rm -f "$out/app-run.mp4"
  env DISPLAY="$display" TALLY_UI_FPS=30 /usr/bin/time -f "%U %S" -o "$out/app-run.time" \
    "$tally" scenes/demo.toml --record "$out/app-run.mp4" >"$out/app-run-$run.log" 2>&1 &
  pid=$!
  sleep "$seconds"
  # The app itself, not /usr/bin/time (which ignores SIGINT while it waits).
  pkill -INT -f "$tally scenes/demo.toml" || true
  status=0
  wait $pid || status=$?
  kill $xvfb_pid 2>/dev/null || true
  wait $xvfb_pid 2>/dev/null || true
  read -r user sys <"$out/app-run.time"
  printf 'run %s: exit %s, %s CPU-s; %s\n' "$run" "$status" "$(echo "$user + $sys" | bc)" \
    "$(grep -h -e 'window:' -e 'frames:' "$out/app-run-$run.log" | tr '\n' ' ')"
done
