#!/usr/bin/env bash
# Porting a real ImageNet model (../shared/imagenet) to three goals: the model is imported from
# its TorchScript graph, pruned with one-shot L1 (channel means folded into the consumers),
# and fine-tuned by distillation from the base model with flips and shifts. The photos are
# split in two: even items adapt and fine-tune, odd items measure (never trained on).
# Usage: bench/port_imagenet.sh [MODEL] [OUT_DIR]   (default mobilenet_v1_0.25)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-mobilenet_v1_0.25}
out=${2:-$(mktemp -d)}
shared=${EDGEFLEET_SHARED:-../shared}
edgefleet=${EDGEFLEET_BUILD_DIR:-build}/edgefleet
card=$shared/imagenet/models/$model.json
[[ -f $card ]] || { echo "port_imagenet: $card not found (needs ../shared/imagenet)" >&2; exit 1; }
macs=$(jq .macs "$card")
params=$(jq .params "$card")
mkdir -p "$out"
jq -n --arg card "$(realpath "$card")" --arg images "$(realpath "$shared/imagenet/images")" --argjson macs "$macs" --argjson params "$params" '
  {base_model: $card, dataset: $images, algorithm: "l1",
   finetune: {steps: 300, batch: 32, learning_rate: 0.01, distill_weight: 1.0, temperature: 1.0, augment: true},
   goals: [{name: "m90", max_macs: ($macs * 0.9 | floor)},
           {name: "pi", device: "raspberry-pi", max_latency_ms: 10},
           {name: "half", max_macs: ($macs * 0.5 | floor), max_params: ($params * 0.65 | floor)}]}' >"$out/port.json"
start=$SECONDS
"$edgefleet" port "$out/port.json" --out "$out/port" >"$out/port.log"
echo "### $model ported to three goals ($((SECONDS - start)) s)"
echo
cat "$out/port/summary.md"
