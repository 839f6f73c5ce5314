#!/usr/bin/env bash
# ONNX copies written by edgefleet (opset 10), each checked through OpenCV DNN against libtorch's
# logits: every zoo model, every ImageNet model of ../shared, and pruned variants of each
# ImageNet model (edgefleet prune at 75%, 50% and 30% of its MACs, not fine-tuned).
# Usage: bench/onnx_export.sh [CHECK_INPUTS] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
inputs=${1:-8}
out=${2:-$(mktemp -d)}
shared=${EDGEFLEET_SHARED:-../shared}
edgefleet=${EDGEFLEET_BUILD_DIR:-build}/edgefleet
row() {  # card, label
  local started=$SECONDS
  if r=$("$edgefleet" export --model "$1" --out "$out/$2.onnx" --check-inputs "$inputs" --json 2>&1); then
    echo "$r" | jq -r --arg l "$2" --arg s "$((SECONDS - started))" \
      '"| \($l) | \(.nodes) | \(if .dynamic_batch then "dynamic" else "fixed 1" end) | \(.max_relative_error | tostring) | \(100 * .top1_agreement)% | \($s) |"'
  else
    echo "| $2 | refused: ${r//|/\\|} | | | | |"
  fi
}
echo "| model | ONNX nodes | batch | max rel. logit error | top-1 agreement | export + check s |"
echo "|---|---:|---|---:|---:|---:|"
for card in models/fashion-mnist/*.json; do
  [[ $card == *.onnx.json ]] && continue
  row "$card" "$(basename "$card" .json)"
done
if [[ -d $shared/imagenet/models ]]; then
  for model in mobilenet_v2_1.0 squeezenet1_1 mobilenet_v1_0.25 mobilenet_v1_0.75 tiny_darknet; do
    row "$shared/imagenet/models/$model.json" "$model"
    for fraction in 0.75 0.5 0.3; do
      "$edgefleet" prune --model "$shared/imagenet/models/$model.json" --macs "$fraction" --out "$out/$model-$fraction.pt" --json >/dev/null
      row "$out/$model-$fraction.json" "$model pruned to $fraction"
    done
  done
else
  echo "(no $shared/imagenet/models: ImageNet rows skipped)" >&2
fi
