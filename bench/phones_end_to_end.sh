#!/usr/bin/env bash
# The instability paper's end-to-end experiment (§4, Fig. 3) on the calibrated phones fleet
# (--fleet phones): ImageNet MobileNetV2 evaluates every phone's photo of each picture.
#   capture     each phone's capture (screen, sensor, ISP, codec), one shared deployment (the
#               card's own preprocessing, fp32): the paper's set-up
#   full        each phone's capture and its own app side (decoder, resizer, precision)
#   repeats     capture varied, 5 sessions per phone: same-phone repeat instability (Fig. 3d)
#   common-isp  capture varied, every phone's raw through one ISP (the paper's §9.2)
# Prints one table row per run. Photos: every STRIDE-th of imagenette/val (200 by default)
# and of imagenet/images.
# Usage: bench/phones_end_to_end.sh [STRIDE=10] [OUT=/tmp/edgefleet-phones]
set -euo pipefail
cd "$(dirname "$0")/.."
stride=${1:-10}
out=${2:-/tmp/edgefleet-phones}
build=${EDGEFLEET_BUILD_DIR:-build}
model=../shared/imagenet/models/mobilenet_v2_1.0.json
if [[ ! -f "$model" ]]; then echo "phones_end_to_end: no model '$model' (needs ../shared)"; exit 0; fi
mkdir -p "$out"

run() {  # NAME DATA SHARD_COUNT ARGS...
  local name=$1 data=$2 count=$3
  shift 3
  local started=$SECONDS
  "$build"/edgefleet stability run --model "$model" --data "$data" --fleet phones --shard "0/$count" \
    --out "$out/$name" "$@" > "$out/$name.log" 2>&1
  "$build"/edgefleet stability merge --out "$out/$name.merged" "$out/$name/results-0-of-$count.sqlite" > /dev/null 2>&1 || true
  /usr/bin/python3 - "$name" "$out/$name.merged/summary.json" "$((SECONDS - started))" <<'PY'
import json, sys
name, path, seconds = sys.argv[1], sys.argv[2], sys.argv[3]
s = json.load(open(path))
acc = [e["accuracy"] * 100 for e in s["environments"]]
row = f"| {name} | {s['images']} | {s['instability'] * 100:.1f} | {s['instability_top3'] * 100:.1f} | {min(acc):.1f}-{max(acc):.1f} |"
if s.get("per_source"):
    repeat = [p["instability"] * 100 for p in s["per_source"]]
    row += f" {min(repeat):.1f}-{max(repeat):.1f} (per phone) |"
else:
    row += " |"
print(row + f" {seconds} s |")
PY
}

echo "| run | photos | instability % | top-3 instability % | per-phone top-1 % | same-phone repeat instability % | time |"
echo "|---|---|---|---|---|---|---|"
run imagenette-capture ../shared/imagenette/val "$stride" --vary capture
run imagenet-capture ../shared/imagenet/images "$((stride / 3 > 0 ? stride / 3 : 1))" --vary capture
run imagenette-full ../shared/imagenette/val "$stride" --vary all
run imagenette-common-isp ../shared/imagenette/val "$stride" --vary capture --common-isp camera:libraw,demosaic=ahd,wb=grayworld
run imagenette-repeats ../shared/imagenette/val "$((stride * 2))" --vary capture --repeats 5
