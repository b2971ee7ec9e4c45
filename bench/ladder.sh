#!/usr/bin/env bash
# One show, three encodes: an HLS ladder of 1080p (6000 kbit/s), 720p (3000) and 480p (1200),
# x264 at PRESET (default veryfast), 2 s segments, from the reference scene on a 1080p canvas,
# live for SECONDS (default 30). Against it, in the same run, the ffmpeg CLI making the same
# three encodes from one input: the scene's own test video read in real time (-re, looped),
# split and scaled by FFmpeg's filters, into FFmpeg's HLS muxer with a master playlist.
# Every segment stays listed (so every frame is counted). Reports CPU-seconds (user+sys), peak
# RSS and wall time, then each rendition's frames
# (ffprobe) and Tally's rendered / lagged / skipped counts.
#   bench/ladder.sh [SECONDS] [PRESET]
set -euo pipefail
seconds=${1:-30}
preset=${2:-veryfast}
source "$(dirname "$0")/common.sh"
big="$out/benchmark-1080p.toml"
sed -e 's/^width = 1280/width = 1920/' -e 's/^height = 720/height = 1080/' scenes/benchmark.toml >"$big"
sed -i "s|path = \"|path = \"$PWD/scenes/|" "$big"
rm -rf "$out/ladder-tally" "$out/ladder-ffmpeg"
mkdir -p "$out/ladder-ffmpeg"

echo "== HLS ladder 1080p/720p/480p, x264 $preset, $seconds s live"
echo "cpu_s  peak_rss_kb  wall_s  run"
measure ladder-tally "$tally" stream "$big" --hls-dir "$out/ladder-tally" --ladder 1080p,720p,480p --hls-window 1000 \
  --preset "$preset" --duration "${seconds}s" --quiet
measure ladder-ffmpeg ffmpeg -v error -y -re -stream_loop -1 -i "$out/testsrc2-720p.mp4" -t "$seconds" \
  -filter_complex "[0:v]split=3[a][b][c];[a]scale=1920:1080[v0];[b]scale=1280:720[v1];[c]scale=854:480[v2]" \
  -map "[v0]" -map "[v1]" -map "[v2]" -c:v libx264 -preset "$preset" -g 60 -keyint_min 60 -sc_threshold 0 \
  -b:v:0 6000k -maxrate:v:0 6000k -bufsize:v:0 6000k \
  -b:v:1 3000k -maxrate:v:1 3000k -bufsize:v:1 3000k \
  -b:v:2 1200k -maxrate:v:2 1200k -bufsize:v:2 1200k \
  -f hls -hls_time 2 -hls_list_size 0 -hls_segment_type fmp4 -hls_flags independent_segments \
  -var_stream_map "v:0 v:1 v:2" -master_pl_name master.m3u8 \
  -hls_segment_filename "$out/ladder-ffmpeg/%v/segment-%05d.m4s" "$out/ladder-ffmpeg/%v/media.m3u8"
echo "frames per rendition (Tally: 1080p 720p 480p; ffmpeg: 0 1 2), $((seconds * 30)) expected"
count() { ffprobe -v error -select_streams v:0 -count_frames -show_entries stream=nb_read_frames \
  -of csv=p=0 "$1" | head -1; }
echo "  tally  $(for r in 1080p 720p 480p; do count "$out/ladder-tally/$r/media.m3u8"; done | tr '\n' ' ')"
echo "  ffmpeg $(for r in 0 1 2; do count "$out/ladder-ffmpeg/$r/media.m3u8"; done | tr '\n' ' ')"
echo "  tally $(grep -o 'frames: .*' "$out/ladder-tally.log" | head -1)"
