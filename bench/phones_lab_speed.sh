#!/usr/bin/env bash
# Lab speed on photos (issue: 2.7 evaluations/s for the built-in fleet's five phones on
# ImageNet photos): photo-environment evaluations per second, wall clock, on the same N photos
# and model in one run, for
#   builtin-phones  the five phones of the built-in span fleet (their uncalibrated captures:
#                   full-resolution LibRaw/OpenCV ISPs, fastNlMeans denoise, sharpening)
#   phones          --fleet phones, full profiles (screen set-up, SIDD sensors demosaiced at
#                   3 photosites per pixel, no denoise)
#   baseline        optional: --fleet phones through BASELINE_BIN, an edgefleet built from an
#                   earlier commit (the same fleet, before this code's speed-ups); its fleet
#                   copy drops the options that build cannot read (the HEIF preset).
#   issue's code    optional: builtin-phones through ISSUE_BIN, an edgefleet built from the
#                   commit the issue measured (3ce44b0, before the phones fleet existed): the
#                   issue's "3x faster per photo-environment than today's code on the same
#                   photos", in one run.
# builtin-phones and phones are not like for like: the two fleets' captures do different
# work; the ratio says what a user of each pays per photo.
# ROUNDS (default 1) repeats the whole comparison, each round running every binary in turn,
# and reports each binary's median rate and the median of the rounds' ratios: this VM's speed
# drifts by 10-20% over minutes, and a ratio from one round compares runs minutes apart.
# Usage: [ROUNDS=3] [BASELINE_BIN=old/edgefleet] [ISSUE_BIN=older/edgefleet] bench/phones_lab_speed.sh [N=60] [DATA=../shared/imagenet/images]
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
rate() {  # NAME BINARY ARGS... -> evaluations per second
  local name=$1 binary=$2
  shift 2
  local started
  started=$(date +%s.%N)
  if ! "$binary" stability run --model "$model" --data "$data" --limit "$n" --out "$out/run-$name" "$@" > "$out/$name.log" 2>&1; then
    echo "phones_lab_speed: the $name run failed: $(tail -1 "$out/$name.log")" >&2
    exit 1
  fi
  /usr/bin/python3 -c "import sys; print(f'{$n * 5 / ($(date +%s.%N) - $started):.2f}')"
}
rounds=${ROUNDS:-1}
if [[ -n "${BASELINE_BIN:-}" ]]; then
  mkdir -p "$out/phones-then"
  for f in fleet/phones/*.json; do sed 's/,preset=ultrafast//g' "$f" > "$out/phones-then/$(basename "$f")"; done
fi
names=("builtin-phones (the five phones of fleet/), this build")
[[ -n "${BASELINE_BIN:-}" ]] && names+=("phones, BASELINE_BIN")
[[ -n "${ISSUE_BIN:-}" ]] && names+=("builtin-phones, ISSUE_BIN (the code the issue measured)")
new_rates=()
other_rates=()  # round-major: round r's rate of names[k] at r * ${#names[@]} + k
for ((r = 0; r < rounds; ++r)); do
  new_rates+=("$(rate phones "$build/edgefleet" --fleet phones)")
  other_rates+=("$(rate builtin-phones "$build/edgefleet" --fleet "$out/builtin-phones")")
  [[ -n "${BASELINE_BIN:-}" ]] && other_rates+=("$(rate phones-then "$BASELINE_BIN" --fleet "$out/phones-then")")
  [[ -n "${ISSUE_BIN:-}" ]] && other_rates+=("$(rate issue "$ISSUE_BIN" --fleet "$out/builtin-phones")")
  rm -rf "$out"/run-*
done
/usr/bin/python3 - "$n" "$rounds" "${#names[@]}" "${new_rates[@]}" "${other_rates[@]}" "${names[@]}" <<'PY'
import statistics, sys
n, rounds, k = (int(v) for v in sys.argv[1:4])
rest = sys.argv[4:]
new = [float(v) for v in rest[:rounds]]
other = [float(v) for v in rest[rounds:rounds + rounds * k]]
names = rest[rounds + rounds * k:]
print(f"{n} photos, {rounds} round(s); --fleet phones through this build: median {statistics.median(new):.2f} evaluations/s"
      f" (rounds: {', '.join(f'{v:.2f}' for v in new)})")
print()
print("| compared with | median evals/s | phones / it, median of rounds | per round |")
print("|---|---|---|---|")
for j, name in enumerate(names):
    rates = [other[r * k + j] for r in range(rounds)]
    ratios = [new[r] / rates[r] for r in range(rounds)]
    print(f"| {name} | {statistics.median(rates):.2f} | {statistics.median(ratios):.2f}x | {', '.join(f'{v:.2f}x' for v in ratios)} |")
PY
