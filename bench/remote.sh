#!/usr/bin/env bash
# What remote control costs under load: the reference scene served by `tally serve` for
# SECONDS (default 30) while CLIENTS obs-websocket-js clients (default 20, MessagePack, with
# InputVolumeMeters) each send RATE requests a second (default 50) and the first records; then
# plain `tally record` of the same scene for the same time, in the same run. Reports CPU-seconds,
# peak RSS and lagged frames of both, and the requests' round trip (p50, p99, max), requests done
# per client and meter events per client.
#   bench/remote.sh [SECONDS] [CLIENTS] [RATE]
set -euo pipefail
seconds=${1:-30}
clients=${2:-20}
rate=${3:-50}
source "$(dirname "$0")/common.sh"
[ -d tests/remote/node_modules/obs-websocket-js ] || packaging/install-deps.sh

config="$out/remote-config"
mkdir -p "$config/tally"
printf 'recordings_dir = "%s"\nrecording_format = "mp4"\n' "$PWD/$out/remote-recordings" \
  >"$config/tally/settings.toml"
export TALLY_CONTROL_PASSWORD=bench-password

echo "reference scene, $seconds s: served to $clients clients at $rate requests/s each, then plain recording"
echo "cpu_s  peak_rss_kb  wall_s  run"
XDG_CONFIG_HOME="$config" /usr/bin/time -f "%U %S %M %e" -o "$out/serve.time" \
  "$tally" serve scenes/benchmark.toml --control-port 0 --quiet >"$out/serve.log" 2>&1 &
serving=$!
for _ in $(seq 100); do
  url=$(grep -o 'ws://[0-9.:]*' "$out/serve.log" || true)
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$out/serve.log"; exit 1; }
(cd tests/remote && node load.mjs "$url" "$TALLY_CONTROL_PASSWORD" "$clients" "$rate" "$seconds") \
  >"$out/remote-load.json"
# /usr/bin/time ignores SIGINT while it waits: the signal goes to tally itself.
kill -INT "$(pgrep -P "$serving")"
wait "$serving" || true
read -r user sys rss wall <"$out/serve.time"
printf '%s %s %s %s\n' "$(echo "$user + $sys" | bc)" "$rss" "$wall" "serve+clients"
# The same wall time as the served run, so CPU-seconds compare directly.
measure record "$tally" record scenes/benchmark.toml -o "$out/remote-plain.mp4" --overwrite \
  --duration "${wall}s" --quiet
grep 'frames:' "$out/serve.log" | sed 's/^/  serve:  /'
grep 'frames:' "$out/record.log" | sed 's/^/  record: /'
echo "  load: $(cat "$out/remote-load.json")"
