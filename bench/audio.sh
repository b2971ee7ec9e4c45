#!/usr/bin/env bash
# CPU cost of audio input sources: a private PulseAudio server with a null sink plays a tone
# (as a desktop would), and a 1280x720 30 fps colour-only scene is recorded in real time with
# no audio input, with one, and with four (each a separate capture of the sink's monitor:
# capture, resampling and clock steering, mixing, meters). The ffmpeg CLI capturing the same
# monitor with its PulseAudio input and encoding the same way is measured alongside.
#
# usage: bench/audio.sh [SECONDS]     (default 30)
set -euo pipefail
seconds=${1:-30}
source "$(dirname "$0")/common.sh"

pulse_dir=$(mktemp -d)
HOME=$pulse_dir XDG_RUNTIME_DIR=$pulse_dir XDG_CONFIG_HOME=$pulse_dir pulseaudio -n --daemonize=no \
  --exit-idle-time=-1 --disable-shm=yes --use-pid-file=no --realtime=no --high-priority=no \
  --log-level=error -L "module-native-protocol-unix socket=$pulse_dir/native auth-anonymous=1" \
  -L "module-null-sink sink_name=speakers rate=48000" >/dev/null 2>&1 &
pulse_pid=$!
export PULSE_SERVER=unix:$pulse_dir/native
for _ in $(seq 50); do [ -S "$pulse_dir/native" ] && break; sleep 0.1; done
ffmpeg -v error -y -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$((seconds + 30))" \
  -af "pan=stereo|c0=c0|c1=c0" "$pulse_dir/tone.wav"
pacat --playback --file-format=wav --latency-msec=20 --device=speakers "$pulse_dir/tone.wav" &
player_pid=$!
trap 'kill $player_pid $pulse_pid 2>/dev/null; rm -rf "$pulse_dir"' EXIT

scene() { # number of audio inputs
  cat <<TOML
[canvas]
width = 1280
height = 720
fps = 30
[[sources]]
id = "background"
kind = "color"
color = "#336699"
TOML
  for i in $(seq "$1"); do
    printf '[[sources]]\nid = "input%s"\nkind = "audio_input"\ndevice = "speakers.monitor"\nalways_on = true\nvolume_db = -12\n' "$i"
  done
  printf '[[scenes]]\nname = "S"\n[[scenes.items]]\nsource = "background"\n'
}
for n in 0 1 4; do scene "$n" >"$out/audio-$n.toml"; done

echo "1280x720 at 30 fps, $seconds s real time"
echo "cpu_s  peak_rss_kb  wall_s  run"
for n in 0 1 4; do
  measure "tally-audio-inputs-$n" "$tally" record "$out/audio-$n.toml" -o "$out/audio-$n.mp4" --overwrite \
    --duration "${seconds}s" --quiet
done
measure ffmpeg-cli-one-pulse-input ffmpeg -v error -y -f lavfi -i "color=#336699:s=1280x720:r=30" \
  -f pulse -i speakers.monitor -t "$seconds" -map 0:v -map 1:a \
  -c:v libx264 -preset veryfast -b:v 2500k -maxrate 2500k -bufsize 2500k -g 60 \
  -c:a aac -b:a 160k "$out/audio-ffmpeg.mp4"
grep -h "frames:" "$out"/tally-audio-inputs-*.log
