#!/usr/bin/env bash
# Installs everything Tally needs to build, run and test on Debian 12. Idempotent: packages already
# present are skipped, so running it twice costs only a dpkg query. Run it directly, or source it
# from another script (packaging/demo.sh, packaging/test.sh) so that a freshly installed cargo is
# on PATH afterwards.
set -euo pipefail

packages=(
  # build
  build-essential pkg-config clang libclang-dev nasm curl ca-certificates
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev
  libavfilter-dev libavdevice-dev libasound2-dev
  # run: encoding, probing, fonts, software Vulkan for wgpu without a GPU
  ffmpeg fonts-dejavu-core mesa-vulkan-drivers libvulkan1
  # tests: real servers, a real X display and a real sound server (PulseAudio with null sinks)
  nginx libnginx-mod-rtmp libnginx-mod-stream openssl srt-tools xvfb x11-xserver-utils
  pulseaudio pulseaudio-utils
  libxkbcommon-x11-0 libx11-xcb1 libxcursor1 libxrandr2 libxi6
  # the app's file dialogs: the desktop portal (tests start it on a private session bus), and
  # zenity, which rfd falls back to where no portal runs
  zenity dbus-daemon xdg-desktop-portal xdg-desktop-portal-gtk
  # benchmarks and tests: clicks and keys in real windows
  xdotool
  # remote-control tests: a Python virtual environment for the PyPI client
  python3-venv
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  echo "install-deps: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Debian's own rustc is too old for wgpu; rustup provides a current stable toolchain.
[ -f "$HOME/.cargo/env" ] && source "$HOME/.cargo/env"
if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: installing Rust (stable) with rustup"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  source "$HOME/.cargo/env"
fi
# Remote-control tests drive Tally with real obs-websocket clients from the package registries,
# pinned: obs-websocket-js from npm (tests/remote/package-lock.json) and obsws-python from PyPI.
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! command -v npm >/dev/null 2>&1; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  echo "install-deps: installing Node.js and npm"
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends nodejs npm
fi
# npm_folder FOLDER PACKAGE WHY: the pinned packages of FOLDER's package-lock, unless PACKAGE
# is there already.
npm_folder() {
  if [ ! -d "$repo/$1/node_modules/$2" ]; then
    echo "install-deps: installing $2 (npm) $3"
    (cd "$repo/$1" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
# pip_venv FOLDER PACKAGE VERSION WHY: PACKAGE==VERSION from PyPI in FOLDER/.venv, unless that
# version is there already.
pip_venv() {
  if ! "$repo/$1/.venv/bin/python" -c \
    "import importlib.metadata as m; assert m.version('$2') == '$3'" 2>/dev/null; then
    echo "install-deps: installing $2==$3 (PyPI) $4"
    python3 -m venv "$repo/$1/.venv"
    "$repo/$1/.venv/bin/pip" install -q "$2==$3"
  fi
}
npm_folder tests/remote obs-websocket-js "for the remote-control tests"
npm_folder tests/relay node-media-server "(an RTMP relay) for the enhanced RTMP tests"
pip_venv tests/remote obsws-python 1.8.0 "for the remote-control tests"
# Enhanced RTMP (HEVC, AV1) is checked by a newer FFmpeg than Debian's 5.1, which cannot demux
# it: FFmpeg 7.0 as imageio-ffmpeg ships it on PyPI, pinned, in its own virtual environment.
pip_venv tests/ffmpeg7 imageio-ffmpeg 0.6.0 "(FFmpeg 7.0) for the enhanced RTMP tests"
# HLS playlists are read back by a parser that is not Tally's: m3u8 from PyPI.
pip_venv tests/hls m3u8 6.0.0 "(an HLS playlist parser) for the HLS tests"
# LL-HLS is played by a real browser: hls.js (npm) in headless Chromium from apt (Debian's build
# plays H.264 and AAC through Media Source Extensions), driven by puppeteer-core (npm), all
# pinned. Debian's security archive keeps only its newest Chromium: when the pinned one has been
# replaced there, the archive's is installed instead, and this says so.
npm_folder tests/browser hls.js "(and puppeteer-core) for the LL-HLS browser test"
chromium_pin="156.0.8078.114-1~deb12u1"
chromium_installed="$(dpkg-query -W -f='${Version}' chromium 2>/dev/null || true)"
if [ "$chromium_installed" != "$chromium_pin" ]; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q
  if apt-cache madison chromium | grep -qF "| $chromium_pin |"; then
    echo "install-deps: installing chromium $chromium_pin for the LL-HLS browser test"
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends \
      "chromium=$chromium_pin" "chromium-common=$chromium_pin"
  elif [ -z "$chromium_installed" ]; then
    echo "install-deps: chromium $chromium_pin is no longer in Debian's archive; installing its current one" >&2
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends chromium
  fi
fi
echo "install-deps: all dependencies present"
