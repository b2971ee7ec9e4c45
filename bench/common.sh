# Shared set-up for the bench scripts (sourced): the repo root, bench/out, a runtime dir for
# headless wgpu, the reference test video, a release build, and a measuring helper.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=bench/out
mkdir -p "$out"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
[ -f "$out/testsrc2-720p.mp4" ] || ffmpeg -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -t 10 \
  -c:v libx264 "$out/testsrc2-720p.mp4"
cargo build --release --quiet
# TALLY_BIN: another build to measure (an earlier commit's, for a before/after in one run).
tally=${TALLY_BIN:-target/release/tally}

# measure NAME COMMAND...: runs the command under /usr/bin/time, its output in $out/NAME.log,
# and prints "cpu_seconds peak_rss_kb wall_seconds NAME".
measure() {
  local name=$1
  shift
  /usr/bin/time -f "%U %S %M %e" -o "$out/$name.time" "$@" >"$out/$name.log" 2>&1
  read -r user sys rss wall <"$out/$name.time"
  printf '%s %s %s %s\n' "$(echo "$user + $sys" | bc)" "$rss" "$wall" "$name"
}
