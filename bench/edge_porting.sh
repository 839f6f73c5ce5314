#!/usr/bin/env bash
# Porting at the edge (papers/mistify.md §5-6), end to end on Fashion-MNIST:
#   1. peer tuning over five device processes: the Table-3 table with privacy rows;
#   2. a multi-branch model of cnn_plain, switched under load vs loading separate models
#      (Table 4's comparison);
#   3. the budget-drop scenario: a port server, the monitor switching branch, re-adapting and
#      swapping in the new model.
# Usage: bench/edge_porting.sh [OUT_DIR] [PEER_CONFIG]   (default config: the built-in one)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/listening.sh
out=${1:-$(mktemp -d)}
peer_config=${2:-}
edgefleet=${EDGEFLEET_BUILD_DIR:-build}/edgefleet
mkdir -p "$out"

echo "## 1. Peer tuning (edgefleet peers run ${peer_config:-<built-in>} --out $out/peers)"
start=$SECONDS
"$edgefleet" peers run $peer_config --out "$out/peers" >"$out/peers.log"
echo "($((SECONDS - start)) s)"
cat "$out/peers/table.md"

echo; echo "## 2. Multi-branch cnn_plain: switching under load vs reloading"
"$edgefleet" branches build --model cnn_plain --out "$out/branches/cnn_plain.mb.pt" --steps 300
"$edgefleet" branches bench --model "$out/branches/cnn_plain.mb.pt" --seconds 20 --clients 2 --switch-every-ms 20 --json "$out/switch.json"

echo; echo "## 3. A budget drop: switch, re-adapt through 'edgefleet port --serve', swap"
cat >"$out/port-serve.json" <<'JSON'
{"base_model": "cnn_plain", "algorithm": "l1", "train_images": 20000, "eval_images": 2000,
 "finetune": {"steps": 300}, "threads": 1,
 "goals": [{"name": "half", "max_macs": 6000000}, {"name": "quarter", "max_macs": 3000000}]}
JSON
# The port server stands for a remote machine: on a machine of 2+ cores it gets its own core,
# and the device runtime another (a co-located, CPU-hungry server swamps the measurements).
pin_server=() pin_device=()
if (( $(nproc) >= 2 )) && command -v taskset >/dev/null; then pin_server=(taskset -c 1) pin_device=(taskset -c 0); fi
trap 'kill $listening_pid 2>/dev/null || true' EXIT
start_listening "$out/port-serve" "${pin_server[@]}" "$edgefleet" port "$out/port-serve.json" --out "$out/port-serve" --serve
"${pin_device[@]}" "$edgefleet" branches scenario --model "$out/branches/cnn_plain.mb.pt" --port-url "$listening_url" --seconds 90 --drop-at 10 --json "$out/scenario.json"
kill -TERM "$listening_pid" && wait "$listening_pid" || true
trap - EXIT
