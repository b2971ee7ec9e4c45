#!/usr/bin/env bash
# The reference benchmark (DESIGN.md): record scenes/benchmark.toml in real time with Tally,
# and have the ffmpeg CLI do the same composite and encode in the same run. Reports
# CPU-seconds (user+sys), peak RSS, and frame counts for both, and Tally's --fast speed.
#
# usage: bench/run.sh [SECONDS]     (default 30)
set -euo pipefail
seconds=${1:-30}
source "$(dirname "$0")/common.sh"

frames() { # file: video frames counted by decoding
  ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$1"
}

echo "reference scene, $seconds s, 1280x720 30 fps, x264 veryfast CBR 2500k, keyframe 2 s, AAC 160k"
echo "cpu_s  peak_rss_kb  wall_s  run"
measure tally "$tally" record scenes/benchmark.toml -o "$out/tally.mp4" --overwrite --duration "${seconds}s" --quiet
measure ffmpeg ffmpeg -v error -y -re -stream_loop -1 -i "$out/testsrc2-720p.mp4" -loop 1 -i assets/logo.png \
  -f lavfi -i anullsrc=r=48000:cl=stereo \
  -filter_complex "color=c=0x203040:s=1280x720:r=30[bg];[bg][1:v]overlay=40:40[a];\
[a]drawtext=fontfile=assets/fonts/DejaVuSans-Bold.ttf:text='Tally reference benchmark':fontsize=32:fontcolor=white:x=40:y=200[b];\
[0:v]scale=480:270[v];[b][v]overlay=780:430[out]" \
  -map "[out]" -map 2:a -t "$seconds" -c:v libx264 -preset veryfast -b:v 2500k -maxrate 2500k -bufsize 2500k \
  -g 60 -keyint_min 60 -sc_threshold 0 -c:a aac -b:a 160k "$out/ffmpeg.mp4"
measure tally-fast "$tally" record scenes/benchmark.toml -o "$out/tally-fast.mp4" --overwrite --duration "${seconds}s" --fast --quiet

echo
echo "tally summary:"
sed 's/^/  /' "$out/tally.log"
echo "tally --fast summary:"
sed 's/^/  /' "$out/tally-fast.log"
echo "frames decoded: tally $(frames "$out/tally.mp4"), ffmpeg $(frames "$out/ffmpeg.mp4"), tally --fast $(frames "$out/tally-fast.mp4")"
