#!/usr/bin/env bash
# The README's main command: installs what is missing, builds the CLI, and runs the main
# job on the built-in defaults: the fleet, the zoo, and the zoo evaluated on Fashion-MNIST.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh --target edgefleet_cli
edgefleet=${EDGEFLEET_BUILD_DIR:-build}/edgefleet

echo; echo "== the built-in fleet (fleet/) =="
"$edgefleet" fleet list
echo; echo "== a device image pipeline (the iPhone XR's), parsed and in canonical form =="
"$edgefleet" pipeline show "$(sed -n 's/.*"pipeline": "\(.*\)",/\1/p' fleet/iphone-xr.json)"
photos=../shared/imagenet/images
if [[ -d $photos ]]; then
  echo; echo "== how far decoders, codecs and camera ISPs move the pixels (12 ImageNet photos) =="
  for group in decode codec camera; do
    "$edgefleet" pipeline diff --data "$photos" --limit 12 --group "$group"
  done
else
  echo; echo "(no $photos: skipping the pipeline comparison on photos)"
fi

echo; echo "== the built-in zoo (models/fashion-mnist/) =="
"$edgefleet" zoo list
echo; echo "== the zoo evaluated on the Fashion-MNIST test set =="
"$edgefleet" zoo eval --data fashion-mnist

echo; echo "== the instability lab: cnn_tiny on 200 Fashion-MNIST test images through every device of the built-in fleet =="
"$edgefleet" stability run --model cnn_tiny --data fashion-mnist --limit 200 --fleet builtin \
  --out "${EDGEFLEET_BUILD_DIR:-build}/stability-fleet"

echo; echo "== instability per source: one source varied at a time (JPEG quality, precision, sensor noise) =="
"$edgefleet" stability run --model cnn_tiny --data fashion-mnist --limit 500 \
  --axis jpeg-quality --axis precision --axis sensor-noise --out "${EDGEFLEET_BUILD_DIR:-build}/stability-sources"

echo; echo "== hardening: stability training of cnn_tiny against 6 fleet devices, measured on the 5 held out (small budget) =="
"$edgefleet" harden --model cnn_tiny --data fashion-mnist --noise paired,mixed --loss kl --alpha 3 \
  --train-images 3000 --validation-images 500 --test-images 1000 --epochs 3 \
  --out "${EDGEFLEET_BUILD_DIR:-build}/hardened/cnn_tiny_hardened.pt"

echo; echo "== SLA-aware selection: the paper's Table III zoo on a residential network, SLA 250 ms =="
"$edgefleet" simulate --zoo paper-table3 --network normal:92.02:48.38 --sla 250

echo; echo "== the built-in zoo profiled on this machine, served over a LAN-like network =="
"$edgefleet" profile --repository models/fashion-mnist --out "${EDGEFLEET_BUILD_DIR:-build}/zoos" --runs 30
"$edgefleet" simulate --zoo "${EDGEFLEET_BUILD_DIR:-build}/zoos/fashion-mnist.zoo.json" --network normal:2:1 --sla 2:6:1 \
  --policy mdinference static-greedy static-accuracy static-latency

echo; echo "== serving: the zoo as one KServe v2 task, a client racing cnn_tiny on the device against a 20 ms network, SLA 30 ms =="
build_dir=${EDGEFLEET_BUILD_DIR:-build}
rm -rf "$build_dir/repository"
"$edgefleet" repository add "$build_dir/repository" --task fashion-mnist models/fashion-mnist/*.json
"$edgefleet" repository list "$build_dir/repository"
"$edgefleet" serve --repository "$build_dir/repository" --port 0 >"$build_dir/serve.out" 2>"$build_dir/serve.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 600); do grep -q listening "$build_dir/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$build_dir/serve.out")
[[ -n $url ]] || { cat "$build_dir/serve.log"; echo "the server did not start" >&2; exit 1; }
"$edgefleet" infer --url "$url" --model fashion-mnist --data fashion-mnist --requests 400 --concurrency 4 \
  --local cnn_tiny --network normal:20:10 --sla 30
curl -s "$url/metrics" | grep -E '^edgefleet_(requests_total|selections_total)' || true
kill -TERM $server && wait $server
trap - EXIT

echo; echo "== porting: cnn_plain tailored to three goals (a microcontroller-like budget, half the MACs, the Raspberry Pi at 2 ms) =="
cat >"$build_dir/port.json" <<'JSON'
{
  "base_model": "cnn_plain",
  "algorithm": "morphnet",
  "train_images": 20000,
  "eval_images": 2000,
  "finetune": {"steps": 200},
  "goals": [
    {"name": "mcu", "max_macs": 3000000, "max_params": 40000},
    {"name": "half", "max_macs": 6000000},
    {"name": "pi", "device": "raspberry-pi", "max_latency_ms": 2.0}
  ]
}
JSON
"$edgefleet" port "$build_dir/port.json" --out "$build_dir/port"

echo; echo "== porting at the edge: peer tuning over five device processes (a small budget; bench/edge_porting.sh runs the full one) =="
cat >"$build_dir/peers.json" <<'JSON'
{"images_per_device": 500, "eval_images": 1000, "local": {"steps": 300}, "rounds": {"steps": 60},
 "max_rounds": 3, "peer_counts": [1, 2, 4], "epsilons": [5]}
JSON
"$edgefleet" peers run "$build_dir/peers.json" --out "$build_dir/peers" | tail -n 14

echo; echo "== a multi-branch cnn_plain: three branches on one frozen base, switched under load =="
"$edgefleet" branches build --model cnn_plain --out "$build_dir/branches/cnn_plain.mb.pt" --steps 100 --train-images 10000 --eval-images 1000
"$edgefleet" branches bench "$build_dir/branches/cnn_plain.mb.pt" --seconds 5

echo; echo "== the compute budget drops mid-run: the monitor switches branch, the port server re-adapts, the new model is swapped in =="
# The port server stands for a remote machine: pinned to its own core where there are two.
pin_server=() pin_device=()
if (( $(nproc) >= 2 )) && command -v taskset >/dev/null; then pin_server=(taskset -c 1) pin_device=(taskset -c 0); fi
"${pin_server[@]}" "$edgefleet" port "$build_dir/port.json" --out "$build_dir/port" --serve >"$build_dir/port-serve.out" 2>"$build_dir/port-serve.log" &
porter=$!
trap 'kill $porter 2>/dev/null || true' EXIT
for _ in $(seq 600); do grep -q listening "$build_dir/port-serve.out" 2>/dev/null && break; sleep 0.2; done
port_url=$(sed -n 's/^listening on //p' "$build_dir/port-serve.out")
[[ -n $port_url ]] || { cat "$build_dir/port-serve.log"; echo "the port server did not start" >&2; exit 1; }
"${pin_device[@]}" "$edgefleet" branches scenario "$build_dir/branches/cnn_plain.mb.pt" --port-url "$port_url" --seconds 60 --drop-at 8
kill -TERM $porter && wait $porter || true
trap - EXIT
