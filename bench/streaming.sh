#!/usr/bin/env bash
# Send-path benchmark: the reference scene (scenes/benchmark.toml) in real time, recording only,
# then recording plus one and two RTMP outputs to a local nginx-rtmp. Reports CPU-seconds
# (user+sys), peak RSS, and each output's latency from a frame leaving the compositor to its
# packet handed to the socket (median and 99th percentile, as `tally stream` prints them).
#
# usage: bench/streaming.sh [SECONDS] [EXTRA TALLY ARGUMENTS...]     (default 30 s)
#   e.g. bench/streaming.sh 30 --tune zerolatency
set -euo pipefail
seconds=${1:-30}
shift || true
extra=("$@")
source "$(dirname "$0")/common.sh"

server=$(mktemp -d)
mkdir -p "$server/records"
port=$((20000 + RANDOM % 20000))
cat >"$server/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process off;
pid $server/nginx.pid;
error_log $server/error.log;
events { worker_connections 64; }
rtmp { server { listen 127.0.0.1:$port; application live { live on; } } }
CONF
nginx -p "$server" -c "$server/nginx.conf" &
nginx_pid=$!
trap 'kill $nginx_pid 2>/dev/null; rm -rf "$server"' EXIT
sleep 1

url() { echo "rtmp://127.0.0.1:$port/live/bench$1"; }
echo "reference scene, $seconds s real time; outputs to nginx-rtmp on loopback"
echo "cpu_s  peak_rss_kb  wall_s  run"
measure record-only "$tally" record scenes/benchmark.toml -o "$out/s0.mp4" --overwrite --duration "${seconds}s" --quiet "${extra[@]}"
measure record+1-output "$tally" stream scenes/benchmark.toml --record "$out/s1.mp4" --overwrite --to "$(url 1)" \
  --duration "${seconds}s" "${extra[@]}"
measure record+2-outputs "$tally" stream scenes/benchmark.toml --record "$out/s2.mp4" --overwrite --to "$(url 2)" --to "$(url 3)" \
  --duration "${seconds}s" "${extra[@]}"
echo
echo "final output lines:"
grep -h "\[stopped\]" "$out/record+1-output.log" "$out/record+2-outputs.log" | sed 's/^ */  /' || true
