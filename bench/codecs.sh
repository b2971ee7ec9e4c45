#!/usr/bin/env bash
# AV1 and HEVC against H.264 on the reference scene (1280x720, 30 fps), in one run:
#  1. live (real time) for SECONDS (default 30): x264 veryfast, x265 ultrafast and SVT-AV1 at
#     presets 13, 12 and 11, each at 2500 kbit/s: CPU-seconds, peak RSS, lagged and skipped
#     frames; then SVT-AV1 at 1080p (the scene scaled up), presets 13 and 12.
#  2. quality per bit: a lossless x264 render of the same SECONDS, then x264 (veryfast), x265
#     (veryfast), SVT-AV1 (preset 10) and rav1e (speed 10) at 1000, 2500 and 4000 kbit/s,
#     rendered --fast (so every encode gets the same frames), each scored with FFmpeg's psnr
#     and ssim filters against the lossless render.
#  3. rav1e's speed at 720p at speeds 10, 9, 8, 7 and 6: 5 s rendered --fast, frames a second.
# PARTS picks some: live, quality, rav1e (default all three).
#   bench/codecs.sh [SECONDS] [PARTS]
set -euo pipefail
seconds=${1:-30}
parts=${2:-live,quality,rav1e}
source "$(dirname "$0")/common.sh"
scene=scenes/benchmark.toml
big="$out/benchmark-1080p.toml"
sed -e 's/^width = 1280/width = 1920/' -e 's/^height = 720/height = 1080/' "$scene" >"$big"
# The copy names its files relative to scenes/.
sed -i "s|path = \"|path = \"$PWD/scenes/|" "$big"

frames() { grep -o 'frames: .*' "$out/$1.log" | head -1; }

if [[ $parts == *live* ]]; then
echo "== live, $seconds s at 2500 kbit/s"
echo "cpu_s  peak_rss_kb  wall_s  run"
live() {
  local name=$1 scene=$2
  shift 2
  measure "$name" "$tally" record "$scene" -o "$out/$name.mkv" --overwrite --duration "${seconds}s" \
    --quiet --bitrate 2500 "$@"
  echo "    $(frames "$name")"
}
live live-x264 "$scene" --codec h264 --preset veryfast
live live-x265 "$scene" --codec hevc --preset ultrafast
for preset in 13 12 11; do
  live "live-svt-av1-p$preset" "$scene" --codec av1 --preset "$preset"
done
for preset in 13 12; do
  live "live-svt-av1-1080p-p$preset" "$big" --codec av1 --preset "$preset"
done
fi

if [[ $parts == *quality* ]]; then
echo "== quality per bit, $seconds s rendered --fast, against a lossless render"
"$tally" record "$scene" -o "$out/lossless.mkv" --overwrite --duration "${seconds}s" --fast --quiet \
  --codec h264 --preset ultrafast --rate-control crf --crf 0 --profile high444 >/dev/null
echo "encoder  kbps  actual_kbps  psnr_db  ssim  encode_cpu_s"
score() {
  local name=$1 kbps=$2
  shift 2
  local file="$out/q-$name-$kbps.mkv"
  /usr/bin/time -f "%U %S" -o "$out/q.time" "$tally" record "$scene" -o "$file" --overwrite \
    --duration "${seconds}s" --fast --quiet --bitrate "$kbps" "$@" >/dev/null
  read -r user sys <"$out/q.time"
  local actual psnr ssim
  actual=$(ffprobe -v error -select_streams v:0 -show_entries packet=size -of csv=p=0 "$file" \
    | awk -v s="$seconds" '{ t += $1 } END { printf "%d", t * 8 / s / 1000 }')
  psnr=$(ffmpeg -v info -i "$file" -i "$out/lossless.mkv" -lavfi "[0:v][1:v]psnr" -f null - 2>&1 \
    | grep -o 'average:[0-9.inf]*' | cut -d: -f2)
  ssim=$(ffmpeg -v info -i "$file" -i "$out/lossless.mkv" -lavfi "[0:v][1:v]ssim" -f null - 2>&1 \
    | grep -o 'All:[0-9.]*' | cut -d: -f2)
  printf '%-8s %5s %12s %8s %7s %6s\n' "$name" "$kbps" "$actual" "$psnr" "$ssim" "$(echo "$user + $sys" | bc)"
}
for kbps in 1000 2500 4000; do
  score x264 "$kbps" --codec h264 --preset veryfast
  score x265 "$kbps" --codec hevc --preset veryfast
  score svt-av1 "$kbps" --codec av1 --preset 10
  score rav1e "$kbps" --encoder rav1e --preset 10
done
fi

if [[ $parts == *rav1e* ]]; then
  echo "== rav1e's speed, 1280x720, 5 s rendered --fast at 2500 kbit/s"
  echo "speed  fps  cpu_s  peak_rss_kb"
  for speed in 10 9 8 7 6; do
    measure "rav1e-speed-$speed" "$tally" record "$scene" -o "$out/rav1e-$speed.mkv" --overwrite \
      --duration 5s --fast --encoder rav1e --preset "$speed" --bitrate 2500 >/dev/null
    read -r cpu rss wall _ < <(tail -1 "$out/rav1e-speed-$speed.time" | awk '{ print $1 + $2, $3, $4 }')
    printf '%5s %5s %6s %10s\n' "$speed" "$(grep -o 'speed: [0-9.]* fps' "$out/rav1e-speed-$speed.log" \
      | grep -o '[0-9.]*')" "$cpu" "$rss"
  done
fi
