#!/usr/bin/env bash
# What pushing HLS to an origin costs: the reference scene (720p30, x264 PRESET, default
# veryfast), live for SECONDS (default 30), 1 s CMAF segments, sent with HTTP PUT to nginx's
# WebDAV module on loopback (started here, stopped at the end). Runs, in the same session:
#   tally-folder    Tally writing HLS into a folder only (the baseline)
#   tally-push      the same, mirrored to the origin by Tally's uploader
#   ffmpeg-push     the ffmpeg CLI encoding the scene's test video (read in real time) the
#                   same way and pushing it with its own HLS muxer's PUT (-method PUT); no
#                   compositing and no sound, so it is the floor, not the same work
#   tally-ll-ladder Tally pushing an LL-HLS ladder (720p + 480p, 500 ms parts)
# Every segment stays listed (so every frame on the origin is counted). Reports CPU-seconds
# (user+sys), peak RSS and wall time, the frames the origin holds (ffprobe on its files), and
# Tally's push summary.
#   bench/hls_push.sh [SECONDS] [PRESET]
set -euo pipefail
seconds=${1:-30}
preset=${2:-veryfast}
source "$(dirname "$0")/common.sh"
origin="$PWD/$out/push-origin"
rm -rf "$origin" "$out/push-folder" "$out/push-mirror" "$out/push-ll"
mkdir -p "$origin/www"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$origin/nginx.conf" <<EOF
daemon off;
master_process off;
pid $origin/nginx.pid;
error_log $origin/error.log;
events { worker_connections 256; }
http {
  client_body_temp_path $origin/body;
  access_log off;
  server {
    listen 127.0.0.1:$port;
    root $origin/www;
    location /live/ { dav_methods PUT DELETE; create_full_put_path on; client_max_body_size 64m; }
  }
}
EOF
nginx -p "$origin" -c "$origin/nginx.conf" &
nginx_pid=$!
trap 'kill $nginx_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
  sleep 0.1
done
url="http://127.0.0.1:$port/live"
hls=(--keyframe-interval 1 --hls-segment 1s --hls-window 1000 --preset "$preset" --bitrate 3000 --duration "${seconds}s" --quiet)

echo "== HLS pushed to nginx (WebDAV) on loopback, reference scene 720p30, x264 $preset, $seconds s live"
echo "cpu_s  peak_rss_kb  wall_s  run"
measure tally-folder "$tally" stream scenes/benchmark.toml --hls-dir "$out/push-folder" "${hls[@]}"
measure tally-push "$tally" stream scenes/benchmark.toml --hls-dir "$out/push-mirror" \
  --hls-push "$url/tally/" "${hls[@]}"
measure ffmpeg-push ffmpeg -v error -re -stream_loop -1 -i "$out/testsrc2-720p.mp4" -t "$seconds" \
  -c:v libx264 -preset "$preset" -g 30 -keyint_min 30 -sc_threshold 0 -b:v 3000k -maxrate 3000k -bufsize 3000k \
  -f hls -method PUT -hls_time 1 -hls_list_size 0 -hls_segment_type fmp4 -hls_flags independent_segments \
  "$url/ffmpeg/media.m3u8"
measure tally-ll-ladder "$tally" stream scenes/benchmark.toml --hls-dir "$out/push-ll" \
  --hls-push "$url/ll/" --ladder 720p,480p --low-latency "${hls[@]}"

count() { ffprobe -v error -select_streams v:0 -count_frames -show_entries stream=nb_read_frames \
  -of csv=p=0 "$1" | head -1; }
www="$origin/www/live"
echo "frames on the origin, $((seconds * 30)) expected"
echo "  tally-push      $(count "$www/tally/media.m3u8")"
echo "  ffmpeg-push     $(count "$www/ffmpeg/media.m3u8")"
echo "  tally-ll-ladder $(count "$www/ll/720p/media.m3u8") $(count "$www/ll/480p/media.m3u8")"
for run in tally-folder tally-push tally-ll-ladder; do
  echo "  $run $(grep -o 'frames: .*' "$out/$run.log" | head -1)"
done
for run in tally-push tally-ll-ladder; do
  echo "  $run $(grep -o 'HLS push to .*' "$out/$run.log" | sed 's|https\?://[^ ]*||' | head -1)"
done
