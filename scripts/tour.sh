#!/usr/bin/env bash
# The longer parts of the story, after scripts/demo.sh (about 15 minutes on 2 cores):
#   scripts/tour.sh [PHOTOS]
# PHOTOS, an ImageFolder of photos, adds how far decoders, codecs and camera ISPs move their
# pixels. Then: the zoo profiled here and simulated on a LAN, peer tuning over five device
# processes, a multi-branch model switched under load, and a compute-budget drop that the
# run-time monitor answers by switching branch and swapping in a re-adapted model.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/listening.sh
scripts/install-deps.sh
scripts/build.sh --target edgefleet_cli
build_dir=${EDGEFLEET_BUILD_DIR:-build}
edgefleet=$build_dir/edgefleet
photos=${1:-}

if [[ -n $photos ]]; then
  echo; echo "== how far decoders, codecs and camera ISPs move the pixels (12 photos of $photos) =="
  for group in decode codec camera; do
    "$edgefleet" pipeline diff --data "$photos" --limit 12 --group "$group"
  done
fi

echo; echo "== the built-in zoo profiled on this machine, served over a LAN-like network =="
"$edgefleet" profile --repository models/fashion-mnist --out "$build_dir/zoos" --runs 30
"$edgefleet" simulate --zoo "$build_dir/zoos/fashion-mnist.zoo.json" --network normal:2:1 --sla 2:6:1 \
  --policy mdinference static-greedy static-accuracy static-latency

echo; echo "== porting at the edge: peer tuning over five device processes (a small budget; bench/edge_porting.sh runs the full one) =="
"$edgefleet" peers run examples/peers-small.json --out "$build_dir/peers" | tail -n 14

echo; echo "== a multi-branch cnn_plain: three branches on one frozen base, switched under load =="
"$edgefleet" branches build --model cnn_plain --out "$build_dir/branches/cnn_plain.mb.pt" --steps 100 --train-images 10000 --eval-images 1000
"$edgefleet" branches bench --model "$build_dir/branches/cnn_plain.mb.pt" --seconds 5

echo; echo "== the compute budget drops mid-run: the monitor switches branch, the port server re-adapts, the new model is swapped in =="
# The port server stands for a remote machine: pinned to its own core where there are two.
pin_server=() pin_device=()
if (( $(nproc) >= 2 )) && command -v taskset >/dev/null; then pin_server=(taskset -c 1) pin_device=(taskset -c 0); fi
trap 'kill $listening_pid 2>/dev/null || true' EXIT
start_listening "$build_dir/port-serve" "${pin_server[@]}" "$edgefleet" port examples/port-cnn_plain.json --out "$build_dir/port" --serve
"${pin_device[@]}" "$edgefleet" branches scenario --model "$build_dir/branches/cnn_plain.mb.pt" --port-url "$listening_url" --seconds 60 --drop-at 8
kill -TERM "$listening_pid" && wait "$listening_pid" || true
trap - EXIT
