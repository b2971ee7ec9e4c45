#!/usr/bin/env bash
# How long each thread of the app holds wgpu's queue: the app records the demo in a 1280x800
# Xvfb window (window redrawn at 30 fps), and perf's uprobes time every call of wgpu-hal's
# Vulkan `Queue::submit` and `Queue::present` for SECONDS. wgpu-core calls both while holding
# the device's submission lock, so while one thread is inside either, the other thread's
# submit waits. Prints, per thread (render = the engine, tally = the window), the number of
# calls and their mean and longest time, then the app's window and frame lines.
#
# Needs perf (Debian: apt install linux-perf) and root, for the uprobes.
#
# usage: bench/queue_lock.sh [SECONDS]     (default 8)
set -euo pipefail
seconds=${1:-8}
command -v perf >/dev/null || {
  echo "queue_lock.sh needs perf: apt install linux-perf" >&2
  exit 1
}
source "$(dirname "$0")/common.sh"

# file_offset SYMBOL_PATTERN: the symbol's offset in the binary's file, which is where perf
# places a uprobe given a bare address.
file_offset() {
  local vaddr segment_vaddr segment_offset
  vaddr=$(nm "$tally" | grep -E "$1" | head -1 | awk '{print $1}')
  # The executable LOAD segment: its virtual address and file offset.
  read -r segment_offset segment_vaddr < <(readelf -lW "$tally" |
    awk '$1 == "LOAD" && / R E / {print $2, $3; exit}')
  printf '0x%x\n' $((0x$vaddr - segment_vaddr + segment_offset))
}
submit=$(file_offset 'wgpu_hal..vulkan..Queue.u20.as.u20.wgpu_hal..Queue.GT.6submit')
present=$(file_offset 'wgpu_hal..vulkan..Queue.u20.as.u20.wgpu_hal..Queue.GT.7present')
perf probe -q -d 'probe_tally:*' 2>/dev/null || true
perf probe -q -x "$tally" -a "submit=$submit" -a "submit_end=$submit%return" \
  -a "present=$present" -a "present_end=$present%return"
trap 'perf probe -q -d "probe_tally:*" 2>/dev/null || true; kill ${xvfb_pid:-} 2>/dev/null' EXIT

display=":$((500 + RANDOM % 400))"
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp -noreset >/dev/null 2>&1 &
xvfb_pid=$!
sleep 1
DISPLAY=$display TALLY_UI_FPS=30 "$tally" scenes/demo.toml --record "$out/queue-lock.mp4" \
  >"$out/queue-lock.log" 2>&1 &
app_pid=$!
sleep 4
perf record -q -e 'probe_tally:*' -p "$app_pid" -o "$out/queue-lock.perf" -- sleep "$seconds" \
  >/dev/null 2>&1
kill -INT "$app_pid"
wait "$app_pid" || true

echo "wgpu-hal Vulkan queue calls over $seconds s (thread/call: calls, mean ms, longest ms)"
perf script -i "$out/queue-lock.perf" -F comm,tid,time,event 2>/dev/null | awk '
  {
    time = $3 + 0; event = $4; sub(/:$/, "", event); sub(/^probe_tally:/, "", event)
    ending = event ~ /_end__return$/; call = event; sub(/_end__return$/, "", call)
    key = $1 "/" call
    if (!ending) { started[key] = time; next }
    if (!(key in started)) next
    took = (time - started[key]) * 1000; delete started[key]
    calls[key]++; total[key] += took; if (took > longest[key]) longest[key] = took
  }
  END { for (key in calls) printf "%-16s %5d %6.1f %6.1f\n", key, calls[key], total[key] / calls[key], longest[key] }' |
  sort
grep -h -e "window:" -e "frames:" "$out/queue-lock.log"
