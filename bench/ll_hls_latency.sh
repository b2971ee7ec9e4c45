#!/usr/bin/env bash
# LL-HLS latency: from a frame leaving Tally's compositor to headless Chromium showing it with
# hls.js, read per presented frame on the page (tests/browser/play_hls.js: the display time
# minus the frame's program date-time, which Tally stamps with the moment the frame left the
# compositor). The reference scene (720p30, x264 veryfast), segments as long as the keyframe
# interval, served by Tally's HTTP server on loopback, watched for SECONDS (default 30) after
# playback starts: LL-HLS with 500 ms and 333 ms parts (1 s segments), and against them, in the
# same run, the same stream as plain HLS (FFmpeg's HLS muxer, no parts) with 1 s and with 2 s
# segments, which hls.js plays three segments behind the live edge. (FFmpeg 5.1, the ffmpeg CLI
# here, cannot write LL-HLS, so it has no row.) Also reports Tally's CPU-seconds and peak RSS.
#   bench/ll_hls_latency.sh [SECONDS]
set -euo pipefail
seconds=${1:-30}
source "$(dirname "$0")/common.sh"
scene="$out/benchmark-abs.toml"
sed "s|path = \"|path = \"$PWD/scenes/|" scenes/benchmark.toml >"$scene"

# run NAME SEGMENT_SECONDS FLAGS...: streams with FLAGS, plays it in Chromium, stops Tally with
# Ctrl-C.
run() {
  local name=$1 segment=$2
  shift 2
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  rm -rf "$out/$name"
  /usr/bin/time -f "%U %S %M %e" -o "$out/$name.time" "$tally" stream "$scene" --hls-dir "$out/$name" \
    --hls-serve "127.0.0.1:$port" --keyframe-interval "$segment" --hls-segment "${segment}s" --preset veryfast \
    --duration "$((seconds + 60))s" --quiet "$@" >"$out/$name.log" 2>&1 &
  local timer=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/live/master.m3u8" >/dev/null && break
    sleep 0.2
  done
  node tests/browser/play_hls.js "http://127.0.0.1:$port/live/master.m3u8" --watch "$seconds" \
    >"$out/$name.json" || { cat "$out/$name.json"; kill -INT "$(pgrep -P $timer)"; wait $timer; return 1; }
  kill -INT "$(pgrep -P $timer)"
  wait $timer || true
  read -r user sys rss wall <"$out/$name.time"
  python3 - "$out/$name.json" "$name" "$(echo "$user + $sys" | bc)" "$rss" "$wall" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
latency = report["latency_ms"]
print(f'{sys.argv[2]:<8} latency median {latency["median"] / 1000:.2f} s, p95 {latency["p95"] / 1000:.2f} s, '
      f'min {latency["min"] / 1000:.2f} s, max {latency["max"] / 1000:.2f} s over {report["frames_measured"]} frames shown; '
      f'tally {sys.argv[3]} cpu_s, {sys.argv[4]} kB peak RSS, {sys.argv[5]} s wall')
PY
}

echo "== latency from Tally's compositor to hls.js in Chromium, $seconds s watched"
run ll-500ms 1 --low-latency --hls-part 500ms
run ll-333ms 1 --low-latency --hls-part 333ms
run hls-1s 1
run hls-2s 2
