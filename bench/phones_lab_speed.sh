#!/usr/bin/env bash
# Lab speed on photos (issue: 2.7 evaluations/s for the built-in fleet's five phones on
# ImageNet photos): photo-environment evaluations per second, wall clock, on the same N photos
# and model in one run, for
#   builtin-phones  the five phones of the built-in span fleet (their uncalibrated captures:
#                   full-resolution LibRaw/OpenCV ISPs, fastNlMeans denoise, sharpening)
#   phones          --fleet phones, full profiles (screen set-up, SIDD sensors demosaiced at
#                   3 photosites per pixel, no denoise)
# Not like for like: the two fleets' captures do different work; the ratio says what a user
# of each pays per photo. Usage: bench/phones_lab_speed.sh [N=60] [DATA=../shared/imagenet/images]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-60}
data=${2:-../shared/imagenet/images}
build=${EDGEFLEET_BUILD_DIR:-build}
model=../shared/imagenet/models/mobilenet_v2_1.0.json
if [[ ! -f "$model" ]]; then echo "phones_lab_speed: no model '$model' (needs ../shared)"; exit 0; fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/builtin-phones"
for phone in galaxy-s10 htc-desire-10 iphone-xr lg-k10 moto-g5; do cp "fleet/$phone.json" "$out/builtin-phones/"; done
rate() {  # NAME ARGS... -> evaluations per second
  local name=$1
  shift
  local started
  started=$(date +%s.%N)
  "$build"/edgefleet stability run --model "$model" --data "$data" --limit "$n" --out "$out/run-$name" "$@" > /dev/null 2>&1
  /usr/bin/python3 -c "import sys; print(f'{$n * 5 / ($(date +%s.%N) - $started):.2f}')"
}
old=$(rate builtin-phones --fleet "$out/builtin-phones")
new=$(rate phones --fleet phones)
echo "| photos | builtin-phones evals/s | phones evals/s | phones / builtin-phones |"
echo "|---|---|---|---|"
/usr/bin/python3 -c "print(f'| $n | $old | $new | {$new / $old:.2f}x |')"
