#!/usr/bin/env bash
# The desktop app's added CPU: the demo collection (1280x720, 30 fps) recorded for SECONDS in
# real time headless with `tally record`, then by the app in a 1280x800 Xvfb window (studio
# mode, preview = program) with the window redrawn at 30 fps and at 10 fps (TALLY_UI_FPS), and
# at 30 fps with another scene (Bars) clicked into preview, so the engine draws two scenes, at
# 30 fps with nothing recording (the encoders do not run then), and at 30 fps recording with
# the frames shown through lavapipe's swapchain instead of MIT-SHM (TALLY_WINDOW_SHM=off).
# Each run reports CPU-seconds, peak RSS, the engine's frame counts and the window's redraws;
# the app's runs also the X server's CPU-seconds in that time (it does the window's share of
# getting frames on screen).
#
# usage: bench/app.sh [SECONDS]     (default 30)
set -euo pipefail
seconds=${1:-30}
source "$(dirname "$0")/common.sh"

display=":$((500 + RANDOM % 400))"
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp -noreset >/dev/null 2>&1 &
xvfb_pid=$!
trap 'kill $xvfb_pid 2>/dev/null' EXIT
sleep 1

# The X server's CPU-seconds so far (user + system, from /proc).
xvfb_cpu() {
  local fields
  read -r -a fields <"/proc/$xvfb_pid/stat"
  echo "scale=2; (${fields[13]} + ${fields[14]}) / $(getconf CLK_TCK)" | bc
}

# app NAME UI_FPS RECORD [PREVIEW_CLICK [VAR=VALUE...]]: runs the app for $seconds (recording
# if RECORD is "record"), then closes it with Ctrl-C. PREVIEW_CLICK ("x y", or "") is clicked
# two seconds in (a scene in the Scenes dock). VAR=VALUE go into the app's environment.
app() {
  local name=$1 ui_fps=$2 record=$3 click=${4:-}
  local extra_env=("${@:5}")
  local record_args=()
  if [ "$record" = record ]; then
    rm -f "$out/$name.mp4"
    record_args=(--record "$out/$name.mp4")
  fi
  local xvfb_before
  xvfb_before=$(xvfb_cpu)
  env DISPLAY="$display" TALLY_UI_FPS="$ui_fps" "${extra_env[@]}" /usr/bin/time -f "%U %S %M %e" -o "$out/$name.time" \
    "$tally" scenes/demo.toml "${record_args[@]}" >"$out/$name.log" 2>&1 &
  local pid=$!
  if [ -n "$click" ]; then
    sleep 2
    # shellcheck disable=SC2086
    DISPLAY=$display xdotool mousemove $click click 1
    sleep $((seconds - 2))
  else
    sleep "$seconds"
  fi
  pkill -INT -f "$tally scenes/demo.toml" || true
  wait $pid || true
  read -r user sys rss wall <"$out/$name.time"
  printf '%s %s %s %s (X server: %s CPU-s)\n' "$(echo "$user + $sys" | bc)" "$rss" "$wall" "$name" \
    "$(echo "$(xvfb_cpu) - $xvfb_before" | bc)"
}

echo "demo collection, 1280x720 at 30 fps, $seconds s real time"
echo "cpu_s  peak_rss_kb  wall_s  run"
measure headless-record "$tally" record scenes/demo.toml -o "$out/headless.mp4" --overwrite --duration "${seconds}s" --quiet
app app-ui-30fps 30 record
app app-ui-10fps 10 record
app app-ui-30fps-bars-in-preview 30 record "55 570"
app app-ui-30fps-not-recording 30 idle
# The window's frames through lavapipe's swapchain instead of MIT-SHM, for comparison.
app app-ui-30fps-swapchain 30 record "" TALLY_WINDOW_SHM=off
grep -H -e "frames:" -e "window:" "$out/headless-record.log" "$out"/app-ui-*.log
