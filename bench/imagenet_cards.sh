#!/usr/bin/env bash
# Checks the TorchScript and ImageFolder paths on real data: evaluates every model of
# ../shared/imagenet/models on ../shared/imagenet/images with the preprocessing its card
# states and compares top-1 with the card's accuracy.top1. Prints a Markdown table.
# Also compares params/MACs counted from each model with the card's.
# Usage: bench/imagenet_cards.sh [SHARED_DIR]   (exits 0 with a note when the data is absent)
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${1:-../shared/imagenet}
edgefleet=${EDGEFLEET_BUILD_DIR:-build}/edgefleet
if [[ ! -d "$shared/models" ]]; then echo "imagenet_cards: $shared not present, nothing to check"; exit 0; fi
echo "| model | images | card top-1 | edgefleet top-1 | difference (points) | edgefleet top-5 | images/s |"
echo "|---|---:|---:|---:|---:|---:|---:|"
status=0
for card in "$shared"/models/*.json; do
  model=${card%.json}.pt
  result=$("$edgefleet" eval --model "$model" --data "$shared/images" --json 2>/dev/null)
  /usr/bin/python3 - "$card" "$result" <<'PY' || status=1
import json, sys
card = json.load(open(sys.argv[1]))
r = json.loads(sys.argv[2])
want = card["accuracy"]["top1"]
diff = 100 * (r["top1"] - want)
print(f"| {card['name']} | {r['images']} | {100*want:.2f} | {100*r['top1']:.2f} | {diff:+.2f} | {100*r['top5']:.2f} | {r['images_per_second']:.1f} |")
sys.exit(0 if abs(diff) <= 1.5 else 1)
PY
done
echo
echo "Params and MACs counted from each model itself (edgefleet zoo show M --count) vs the card:"
echo
for card in "$shared"/models/*.json; do
  "$edgefleet" zoo show "${card%.json}.pt" --count | tail -1 |
    awk '{ printf "| %s | params %s (card %s) | MACs %s (card %s) | %s |\n", $1, $3, $4, $5, $6, ($3 == $4 && $5 == $6) ? "equal" : "DIFFERENT" }'
done
exit $status
