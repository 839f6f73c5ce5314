#!/usr/bin/env bash
# Any TorchScript classifier pruned from its graph's channel groups (edgefleet prune): each
# ImageNet model of ../shared at 100% of its MACs (the graph specialised, nothing removed: what
# specialisation alone changes) and at <= 50%, batch-1 latency of base and pruned model
# measured in the same run (interleaved rounds, median), at 1 and 2 threads. Not fine-tuned:
# this measures speed, not accuracy.
# Usage: bench/graph_pruning.sh [ROUNDS] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
out=${2:-$(mktemp -d)}
shared=${EDGEFLEET_SHARED:-../shared}
edgefleet=${EDGEFLEET_BUILD_DIR:-build}/edgefleet
[[ -d $shared/imagenet/models ]] || { echo "graph_pruning: $shared/imagenet/models not found" >&2; exit 1; }
echo "| model | threads | MACs kept | params kept | prunable groups | base ms | pruned ms | speed-up |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for model in mobilenet_v2_1.0 squeezenet1_1 mobilenet_v1_0.25 mobilenet_v1_0.75 tiny_darknet; do
  for fraction in 1.0 0.5; do
    for threads in 1 2; do
      "$edgefleet" prune --model "$shared/imagenet/models/$model.json" --macs "$fraction" --out "$out/$model-$fraction.pt" \
        --measure --rounds "$rounds" --threads "$threads" --json |
        jq -r --arg t "$threads" '"| \(.model) | \($t) | \(100 * .macs / .base_macs * 10 | round / 10)% | \(100 * .params / .base_params * 10 | round / 10)% | \(.prunable_groups) of \(.groups) | \(.base_ms * 100 | round / 100) | \(.pruned_ms * 100 | round / 100) | \(.speedup * 100 | round / 100)x |"'
    done
  done
done
