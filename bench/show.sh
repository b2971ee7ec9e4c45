#!/usr/bin/env bash
# What a running show costs: the reference scene recorded in real time for SECONDS (default
# 120) by plain `tally record`, and by `tally run` of a show over the same collection whose cues
# fire every 5 s (texts, an item shown and hidden, the video's volume faded), in the same run.
# Reports CPU-seconds, peak RSS and lagged frames of both, and each cue's firing frame against
# its due frame (lateness in frames).
#   bench/show.sh [SECONDS]
set -euo pipefail
seconds=${1:-120}
source "$(dirname "$0")/common.sh"

show="$out/bench-show.toml"
{
  echo 'collection = "../../scenes/benchmark.toml"'
  t=5
  n=1
  while [ "$t" -lt "$seconds" ]; do
    case $((n % 4)) in
      0) action="{ do = \"text\", source = \"title\", text = \"Cue $n\" }" ;;
      1) action="{ do = \"hide\", scene = \"Benchmark\", source = \"logo\" }" ;;
      2) action="{ do = \"show\", scene = \"Benchmark\", source = \"logo\" }" ;;
      3) action="{ do = \"volume\", source = \"video\", db = -$((n % 20)), fade_ms = 1000 }" ;;
    esac
    printf '\n[[cues]]\nname = "cue %d"\nat = "%02d:%02d:%02d"\nactions = [%s]\n' \
      "$n" $((t / 3600)) $((t / 60 % 60)) $((t % 60)) "$action"
    t=$((t + 5))
    n=$((n + 1))
  done
  printf '\n[[cues]]\nname = "end"\nat = "%02d:%02d:%02d"\nactions = [{ do = "end" }]\n' \
    $((seconds / 3600)) $((seconds / 60 % 60)) $((seconds % 60))
} >"$show"
"$tally" check "$show" >/dev/null

echo "reference scene, $seconds s real time: plain recording against the same with a show"
echo "cpu_s  peak_rss_kb  wall_s  run"
measure record "$tally" record scenes/benchmark.toml -o "$out/show-plain.mp4" --overwrite \
  --duration "${seconds}s" --quiet
measure show "$tally" run "$show" --record "$out/show-run.mp4" --overwrite --quiet
grep 'frames:' "$out/record.log" | sed 's/^/  record: /'
grep 'frames:' "$out/show.log" | sed 's/^/  show:   /'
# Cue n is due at 5n s: frame 150n at 30 fps.
awk '/^cue [0-9]+ `cue [0-9]+` fired at frame/ {
       n = $2; due = n * 150; late = $NF - due; total++; if (late > worst) worst = late
       if (late != 0) off++ }
     END { printf "cues: %d fired, %d not on their due frame, latest by %d frames\n", total, off, worst }' \
  "$out/show.log"
