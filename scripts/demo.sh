#!/usr/bin/env bash
# The README's main command: installs what is missing, builds the CLI, and runs the main job on
# the built-in defaults — the fleet, an instability report across it, hardening, porting and
# serving — in under 10 minutes after the build on 2 cores. scripts/tour.sh runs the long parts.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/listening.sh
scripts/install-deps.sh
scripts/build.sh --target edgefleet_cli
build_dir=${EDGEFLEET_BUILD_DIR:-build}
edgefleet=$build_dir/edgefleet
started=$SECONDS

echo; echo "== the built-in fleet (fleet/) =="
"$edgefleet" fleet list
echo; echo "== one device: the iPhone XR's image pipeline and inference setting, parsed from its profile =="
"$edgefleet" fleet show iphone-xr

echo; echo "== the built-in zoo (models/fashion-mnist/), evaluated on the Fashion-MNIST test set =="
"$edgefleet" zoo list
"$edgefleet" zoo eval --data fashion-mnist

echo; echo "== the instability lab: cnn_tiny on 200 Fashion-MNIST test images through every device of the built-in fleet =="
# Each demo measures this build afresh: a results store resumes only a run whose environments
# are unchanged, and an updated device profile is a changed environment.
rm -rf "$build_dir/stability-fleet" "$build_dir/stability-sources"
"$edgefleet" stability run --model cnn_tiny --data fashion-mnist --limit 200 --fleet builtin --out "$build_dir/stability-fleet"

echo; echo "== instability per source: one source varied at a time (JPEG quality, precision, sensor noise) =="
"$edgefleet" stability run --model cnn_tiny --data fashion-mnist --limit 500 \
  --axis jpeg-quality --axis precision --axis sensor-noise --out "$build_dir/stability-sources"

echo; echo "== hardening: stability training of cnn_tiny against 6 fleet devices, measured on the 5 held out (small budget) =="
"$edgefleet" harden --model cnn_tiny --data fashion-mnist --noise paired,mixed --loss kl --alpha 3 \
  --train-images 3000 --validation-images 500 --test-images 1000 --epochs 3 \
  --out "$build_dir/hardened/cnn_tiny_hardened.pt"

echo; echo "== porting: cnn_plain tailored to three goals (a microcontroller-like budget, half the MACs, the Raspberry Pi at 2 ms) =="
"$edgefleet" port examples/port-cnn_plain.json --out "$build_dir/port"

echo; echo "== SLA-aware selection: the paper's Table III zoo on a residential network, SLA 250 ms =="
"$edgefleet" simulate --zoo paper-table3 --network normal:92.02:48.38 --sla 250

echo; echo "== serving: the zoo as one KServe v2 task, a client racing cnn_tiny on the device against a 20 ms network, SLA 30 ms =="
rm -rf "$build_dir/repository"
"$edgefleet" repository add "$build_dir/repository" --task fashion-mnist models/fashion-mnist/*.json
"$edgefleet" repository list "$build_dir/repository"
trap 'kill $listening_pid 2>/dev/null || true' EXIT
start_listening "$build_dir/serve" "$edgefleet" serve --repository "$build_dir/repository" --port 0
"$edgefleet" infer --url "$listening_url" --model fashion-mnist --data fashion-mnist --requests 400 --concurrency 4 \
  --local cnn_tiny --network normal:20:10 --sla 30
curl -s "$listening_url/metrics" | grep -E '^edgefleet_(requests_total|selections_total)' || true
kill -TERM "$listening_pid" && wait "$listening_pid"
trap - EXIT

echo; echo "demo finished in $((SECONDS - started)) s after the build; scripts/tour.sh runs the longer parts"
