#!/usr/bin/env bash
# Soak test: MINUTES (default 60) of real-time `tally stream` of the reference scene, recording
# to bench/out/soak.mp4 from the same encode, to an nginx-rtmp server on loopback that is
# killed for DOWN seconds (default 20) every EVERY minutes (default 4): a link that drops.
# Samples tally's resident memory every 10 s (bench/out/soak-rss.tsv) and reports frames
# rendered, lagged and skipped, reconnects, the recording's frame count against the expected
# one, and memory after the first minute against the end.
#   bench/soak.sh [MINUTES] [EVERY] [DOWN]
set -euo pipefail
minutes=${1:-60}
every=${2:-4}
down=${3:-20}
source "$(dirname "$0")/common.sh"

server=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$server/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process off;
pid $server/nginx.pid;
error_log $server/error.log warn;
events { worker_connections 64; }
rtmp { server { listen 127.0.0.1:$port; chunk_size 4096; application live { live on; } } }
CONF
nginx_pid=
start_server() { nginx -p "$server" -c "$server/nginx.conf" & nginx_pid=$!; }
stop_server() { [ -n "$nginx_pid" ] && kill -9 "$nginx_pid" 2>/dev/null; wait "$nginx_pid" 2>/dev/null || true; nginx_pid=; }
trap 'stop_server; [ -n "${tally_pid:-}" ] && kill "$tally_pid" 2>/dev/null; rm -rf "$server"' EXIT
start_server

"$tally" stream scenes/benchmark.toml --to "rtmp://127.0.0.1:$port/live/soak" \
  --record "$out/soak.mp4" --overwrite --duration "${minutes}m" \
  --reconnect-delay 1s --reconnect-max-delay 4s --max-retries 0 --quiet \
  >"$out/soak.log" 2>&1 &
tally_pid=$!
started=$(date +%s)
next_drop=$((started + every * 60))
drops=0
printf 'seconds\trss_kb\n' >"$out/soak-rss.tsv"
while kill -0 "$tally_pid" 2>/dev/null; do
  now=$(date +%s)
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$tally_pid/status" 2>/dev/null || true)
  [ -n "$rss" ] && printf '%s\t%s\n' "$((now - started))" "$rss" >>"$out/soak-rss.tsv"
  if [ "$now" -ge "$next_drop" ] && [ "$now" -lt $((started + minutes * 60 - down - 30)) ]; then
    stop_server
    drops=$((drops + 1))
    sleep "$down"
    start_server
    next_drop=$((next_drop + every * 60))
  fi
  sleep 10
done
status=0
wait "$tally_pid" || status=$?
tally_pid=

expected=$((minutes * 60 * 30))
recorded=$(ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets \
  -of csv=p=0 "$out/soak.mp4")
decode_errors=$(ffmpeg -v error -i "$out/soak.mp4" -f null - 2>&1 | wc -l)
echo "soak: ${minutes} min, the link dropped ${drops} times for ${down} s (exit ${status})"
grep -E 'frames:|reconnects' "$out/soak.log" || true
echo "recording: $recorded video frames of $expected expected, $decode_errors lines of decode errors"
awk -F'\t' 'NR > 1 && $1 >= 60 { if (!first) first = $2; if ($2 > max) max = $2; last = $2 }
  END { printf "memory: %d MB after the first minute, %d MB at the end, %d MB at most\n",
        first / 1024, last / 1024, max / 1024 }' "$out/soak-rss.tsv"
