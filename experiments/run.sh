#!/usr/bin/env bash
# Runs one experiment file (or all) on one model and dataset; each writes OUT/NAME/ with
# results.sqlite, summary.json and report.html. Resumable: re-run the same command after an
# interruption.
# Usage: experiments/run.sh MODEL DATA OUT [LIMIT=0] [EXPERIMENT...]
#   experiments/run.sh cnn_tiny fashion-mnist runs/zoo 2000
#   experiments/run.sh ../shared/imagenet/models/squeezenet1_1.json ../shared/imagenet/images runs/squeezenet 400 all-sources
# INT8 environments calibrate on a held-out set: Fashion-MNIST's train split, or the items
# after LIMIT of an image folder.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
model=$1 data=$2 out=$3 limit=${4:-0}
shift $(( $# < 4 ? $# : 4 ))
experiments=("$@")
if [[ ${#experiments[@]} -eq 0 ]]; then
  for f in "$here"/*.json; do experiments+=("$(basename "$f" .json)"); done
fi
bin=${EDGEFLEET_BIN:-"$here/../build/edgefleet"}
for name in "${experiments[@]}"; do
  echo "== $name"
  "$bin" stability run --model "$model" --data "$data" --experiment "$here/$name.json" --out "$out/$name" --limit "$limit"
done
