#!/usr/bin/env bash
# The instability paper's Table 4 (two raw converters: 14.11%) with real raw developers: one
# phone's sensor (galaxy-s10 of --fleet phones: SIDD S6 noise at ISO 100, 12 MP, screen
# set-up) writes each photo's mosaic as a DNG, developed by LibRaw (AHD), dcraw (AHD),
# darktable-cli and rawtherapee-cli with their default settings; the same JPEG q95 and the
# card's preprocessing follow. Prints the developers' versions and the run's table.
# Usage: bench/raw_developers.sh [STRIDE=20] [OUT=/tmp/edgefleet-raw-developers]
set -euo pipefail
cd "$(dirname "$0")/.."
stride=${1:-20}
out=${2:-/tmp/edgefleet-raw-developers}
build=${EDGEFLEET_BUILD_DIR:-build}
model=../shared/imagenet/models/mobilenet_v2_1.0.json
if [[ ! -f "$model" ]]; then echo "raw_developers: no model '$model' (needs ../shared)"; exit 0; fi
for program in dcraw darktable-cli rawtherapee-cli; do
  command -v "$program" > /dev/null || { echo "raw_developers: $program is not installed (scripts/install-deps.sh)"; exit 1; }
done
echo "developers: dcraw $(dcraw 2>&1 | grep -o "v[0-9.]*" | head -1), $(darktable-cli --version | head -1 | sed "s/this is //"), $(rawtherapee-cli -v 2>&1 | head -1 | sed "s/, command line.//")"
screen="screen:scale=0.02,shift=0.01,rotate=1,keystone=0.02,blur=0.001,exposure=0.33,seed=1"
sensor="sensor=0,wb=grayworld,nlf=S6,iso=100,photosites=3024,fill=0.8,oversample=3,seed=1"
rm -rf "$out"
mkdir -p "$out"
started=$SECONDS
"$build"/edgefleet stability run --model "$model" --data ../shared/imagenette/val --shard "0/$stride" --out "$out/run" \
  --env "libraw=$screen|camera:libraw,demosaic=ahd,$sensor|encode:jpeg,quality=95" \
  --env "dcraw=$screen|camera:dcraw,demosaic=ahd,$sensor|encode:jpeg,quality=95" \
  --env "darktable=$screen|camera:darktable,demosaic=default,$sensor|encode:jpeg,quality=95" \
  --env "rawtherapee=$screen|camera:rawtherapee,demosaic=default,$sensor|encode:jpeg,quality=95" > "$out/run.log" 2>&1
"$build"/edgefleet stability merge --out "$out/merged" "$out/run/results-0-of-$stride.sqlite" 2>&1 | grep -v "^merged" || true
echo "pairwise disagreement (share of photos two developers answer differently):"
/usr/bin/python3 - "$out/merged/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
names = [e["name"] for e in s["environments"]]
m = s["pairwise_disagreement"]
for i in range(len(names)):
    for j in range(i + 1, len(names)):
        print(f"  {names[i]} vs {names[j]}: {m[i][j] * 100:.1f}%")
PY
echo "time: $((SECONDS - started)) s"
