#!/usr/bin/env bash
# Inference latency with glibc's default malloc settings vs edgefleet's (core/allocator.h:
# freed memory kept for reuse instead of unmapped and re-faulted on every forward pass), the
# same model and batch sizes in the same run, one engine thread. Prints Markdown.
# Usage: bench/allocator.sh [CARD.json ...]
#   default: ../shared/imagenet/models/mobilenet_v2_1.0.json when present, and the zoo's cnn_plain
set -euo pipefail
cd "$(dirname "$0")/.."
edgefleet=${EDGEFLEET_BUILD_DIR:-build}/edgefleet
cards=("$@")
if [[ ${#cards[@]} -eq 0 ]]; then
  [[ -f ../shared/imagenet/models/mobilenet_v2_1.0.json ]] && cards+=(../shared/imagenet/models/mobilenet_v2_1.0.json)
  cards+=(models/fashion-mnist/cnn_plain.json)
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ms() {  # DEFAULTS BATCH -> mean ms per batch
  EDGEFLEET_MALLOC_DEFAULTS=$1 "$edgefleet" profile --repository "$tmp/repo" --out "$tmp/profile" --batch "$2" --threads 1 \
    --runs 10 --warmup 3 2>/dev/null | sed -n 's/^[^ ]*: \([0-9.]*\) +-.*/\1/p'
}
echo "| model | batch | glibc defaults ms | edgefleet ms | speed-up |"
echo "|---|---:|---:|---:|---:|"
for card in "${cards[@]}"; do
  rm -rf "$tmp/repo"
  "$edgefleet" repository add "$tmp/repo" --task t --variant m "$card" >/dev/null
  for b in 1 2 4 8; do
    d=$(ms 1 "$b") e=$(ms 0 "$b")
    awk -v m="$(basename "$card" .json)" -v b="$b" -v d="$d" -v e="$e" 'BEGIN { printf "| %s | %d | %.2f | %.2f | %.1fx |\n", m, b, d, e, d / e }'
  done
done
