#!/usr/bin/env bash
# How much room the app leaves: headless `tally record` and the app recording the demo
# (1280x720, 30 fps, window redrawn at 30 fps in a 1280x800 Xvfb) for SECONDS, each held to
# QUOTA of a core by a cgroup CPU quota per 10 ms period (the X server is not held). Prints
# CPU-seconds, the engine's frame counts and the window's redraws. Needs root and the cgroup
# cpu controller (v1 at /sys/fs/cgroup/cpu, or v2). TALLY_BIN measures another build.
#
# usage: sudo bench/app-quota.sh QUOTA [SECONDS]    e.g. bench/app-quota.sh 0.72 30
set -euo pipefail
quota=${1:?usage: bench/app-quota.sh QUOTA [SECONDS]}
seconds=${2:-30}
source "$(dirname "$0")/common.sh"

period_us=10000
quota_us=$(printf '%.0f' "$(echo "$quota * $period_us" | bc -l)")
if [ -d /sys/fs/cgroup/cpu ]; then
  group=/sys/fs/cgroup/cpu/tally-bench
  mkdir -p "$group"
  echo "$period_us" >"$group/cpu.cfs_period_us"
  echo "$quota_us" >"$group/cpu.cfs_quota_us"
else
  group=/sys/fs/cgroup/tally-bench
  mkdir -p "$group"
  echo "$quota_us $period_us" >"$group/cpu.max"
fi

display=":$((500 + RANDOM % 400))"
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp -noreset >/dev/null 2>&1 &
xvfb_pid=$!
trap 'kill $xvfb_pid 2>/dev/null; sleep 0.5; rmdir "$group" 2>/dev/null' EXIT
sleep 1

# Runs its arguments as a command inside the cgroup: sh -c "$held" "$group" COMMAND...
held='echo $$ >"$0/cgroup.procs"; exec "$@"'

echo "demo collection, $seconds s real time, held to $quota of a core ($quota_us us per $period_us us)"
echo "cpu_s  peak_rss_kb  wall_s  run"
measure quota-headless sh -c "$held" "$group" "$tally" record scenes/demo.toml -o "$out/quota-headless.mp4" --overwrite \
  --duration "${seconds}s" --quiet
rm -f "$out/quota-app.mp4"
env DISPLAY="$display" TALLY_UI_FPS=30 /usr/bin/time -f "%U %S %M %e" -o "$out/quota-app.time" \
  sh -c "$held" "$group" "$tally" scenes/demo.toml --record "$out/quota-app.mp4" >"$out/quota-app.log" 2>&1 &
pid=$!
sleep "$seconds"
pkill -INT -f "$tally scenes/demo.toml" || true
wait $pid || true
read -r user sys rss wall <"$out/quota-app.time"
printf '%s %s %s %s\n' "$(echo "$user + $sys" | bc)" "$rss" "$wall" quota-app
grep -H -e "frames:" -e "window:" "$out/quota-headless.log" "$out/quota-app.log"
