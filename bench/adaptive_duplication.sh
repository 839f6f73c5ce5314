#!/usr/bin/env bash
# Beyond the paper: duplicate only when it pays. MDInference at SLA 250 ms on the university and
# residential networks of the Table IV setting, the client racing its on-device model on every
# request (the paper), never, or only when its running network estimate makes a remote miss
# more likely than a threshold. Prints Markdown.
# Usage: bench/adaptive_duplication.sh [ZOO] [NETWORK_SAMPLE]   (default: paper-table3 round-trip)
set -euo pipefail
cd "$(dirname "$0")/.."
edgefleet=${EDGEFLEET_BUILD_DIR:-build}/edgefleet
zoo=${1:-paper-table3}
sample=${2:-round-trip}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "| network | duplication | aggregate accuracy | SLA attainment | answers from the local model | requests that ran the local model |"
echo "|---|---|---:|---:|---:|---:|"
for net in university:normal:57.87:30.79 residential:normal:92.02:48.38; do
  name=${net%%:*} spec=${net#*:}
  for mode in always never adaptive:0.01 adaptive:0.05; do
    case $mode in
      always) flags=() ;;
      never) flags=(--no-duplicate) ;;
      adaptive:*) flags=(--duplicate-above "${mode#adaptive:}") ;;
    esac
    "$edgefleet" simulate --zoo "$zoo" --sla 250 --network "$spec" --network-sample "$sample" --policy mdinference \
      "${flags[@]}" --out "$tmp/o" >/dev/null
    jq -r --arg n "$name" --arg m "$mode" \
      '.[0] | "| \($n) | \($m) | \(100*.aggregate_accuracy*100|round/100)% | \(100*.sla_attainment*100|round/100)% | \(100*.on_device_reliance*100|round/100)% | \(100*.local_runs*100|round/100)% |"' \
      "$tmp/o/results.json"
  done
done
