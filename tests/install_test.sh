#!/usr/bin/env bash
# Installs edgefleet into a temporary prefix, moves the prefix, and runs the installed copy
# from elsewhere: zoo list, fleet list and a short stability run must work, and must read the
# installed data (a fleet profile removed from the moved prefix disappears from `fleet list`).
# Usage: tests/install_test.sh BUILD_DIR
set -euo pipefail
build=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset EDGEFLEET_DATA_DIR EDGEFLEET_MODELS_DIR EDGEFLEET_FLEET_DIR
cmake --install "$build" --prefix "$tmp/first" >/dev/null
mv "$tmp/first" "$tmp/moved"
cd "$tmp"
edgefleet=$tmp/moved/bin/edgefleet
"$edgefleet" --version | grep -q "$tmp/moved/share/edgefleet" || { echo "FAIL: --version names another data folder: $("$edgefleet" --version)"; exit 1; }
"$edgefleet" zoo list | grep -q cnn_tiny || { echo "FAIL: zoo list"; exit 1; }
"$edgefleet" fleet list | grep -q raspberry-pi || { echo "FAIL: fleet list"; exit 1; }
rm "$tmp/moved/share/edgefleet/fleet/raspberry-pi.json"
if "$edgefleet" fleet list | grep -q raspberry-pi; then echo "FAIL: fleet list did not read the installed fleet"; exit 1; fi
if [[ ! -d /usr/share/datasets/fashion-mnist ]]; then echo "SKIP: Debian's dataset-fashion-mnist is not installed"; exit 77; fi
"$edgefleet" stability run --model cnn_tiny --data fashion-mnist --limit 20 --out "$tmp/run" \
  --env "plain=resize:opencv,linear,model" --env "jpeg=encode:jpeg,quality=50|decode:turbojpeg|resize:opencv,linear,model" >/dev/null
grep -q '"instability"' "$tmp/run/summary.json" || { echo "FAIL: no summary"; exit 1; }
echo "installed, moved and ran from $tmp/moved: zoo list, fleet list, a stability run of 20 inputs"
