#!/usr/bin/env bash
# The per-kernel latency model against measured batch-1 latency on this machine: calibrate once
# (edgefleet device calibrate), then for every ImageNet model of ../shared, every zoo
# TorchScript model, and pruned variants of each family (edgefleet prune at 10 MACs fractions),
# predict and measure (edgefleet device predict --measure). Prints Markdown.
# Usage: bench/latency_predictor.sh [THREADS] [KERNELS_PER_TYPE] [NETWORKS] [OUT_DIR]
# (NETWORKS: random whole networks that put the kernels in context; 0 = kernels alone)
# COMPARE="a.json b.json ..." (latency models written by device calibrate, e.g. by two builds):
# also predict every model with each of them against the same measured latencies, so that
# calibrations are compared without the run-to-run drift of the measurements.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-1}
kernels=${2:-24}
networks=${3:-60}
out=${4:-$(mktemp -d)}
shared=${EDGEFLEET_SHARED:-../shared}
edgefleet=${EDGEFLEET_BUILD_DIR:-build}/edgefleet
mkdir -p "$out"
start=$SECONDS
"$edgefleet" device calibrate --out "$out/latency.json" --threads "$threads" --kernels "$kernels" --networks "$networks" >"$out/calibrate.log"
echo "Calibrated in $((SECONDS - start)) s ($threads threads, $kernels kernels per type, $networks random networks):"
echo
sed -n '/^kernel/,$p' "$out/calibrate.log" | sed '$d' | sed 's/^/    /'
for graph in optimised frozen; do
  path=$([[ $graph == optimised ]] && echo '.latency_model' || echo '.latency_model.frozen')
  jq -r --arg graph "$graph" "$path.context // empty | select(.types | length > 0) | \"    in context, \(\$graph) graph (\(.networks) networks): scale and ms per kernel: \" + ([.types | to_entries[] | \"\(.key) \(.value.scale * 100 | round / 100) \(.value.ms_per_kernel * 10000 | round / 10000)\"] | join(\", \")) + \"; call \(.call_ms * 1000 | round / 1000) ms\"" "$out/latency.json"
done
echo
models=()
for m in mobilenet_v2_1.0 squeezenet1_1 mobilenet_v1_0.25 mobilenet_v1_0.75 tiny_darknet; do
  [[ -f $shared/imagenet/models/$m.json ]] && models+=("$shared/imagenet/models/$m.json")
done
for card in models/fashion-mnist/*.json; do
  [[ $card == *.onnx.json ]] || models+=("$card")
done
# Pruned variants: 10 per family.
for base in mobilenet_v2_1.0 squeezenet1_1 mobilenet_v1_0.75 tiny_darknet; do
  [[ -f $shared/imagenet/models/$base.json ]] || continue
  for f in 0.95 0.9 0.8 0.7 0.6 0.5 0.45 0.4 0.35 0.3; do
    "$edgefleet" prune --model "$shared/imagenet/models/$base.json" --macs "$f" --out "$out/$base-$f.pt" --json >/dev/null
    models+=("$out/$base-$f.json")
  done
done
for base in mobilenetv2_w100 resnet_s cnn_plain; do
  for f in 0.95 0.9 0.8 0.7 0.6 0.5 0.45 0.4 0.35 0.3; do
    "$edgefleet" prune --model "models/fashion-mnist/$base.json" --macs "$f" --channel-multiple 8 --out "$out/$base-$f.pt" --json >/dev/null 2>&1 || continue
    models+=("$out/$base-$f.json")
  done
done
echo "| model | graph | predicted ms | measured ms | error |"
echo "|---|---|---:|---:|---:|"
: >"$out/errors"
for card in "${models[@]}"; do
  "$edgefleet" device predict --latency-model "$out/latency.json" --model "$card" --measure --json >"$out/one.json"
  jq -r '"| \(.model) | \(.graph) | \(.predicted_ms * 1000 | round / 1000) | \(.measured_ms * 1000 | round / 1000) | \(.error * 1000 | round / 10)% |"' "$out/one.json"
  jq -r '"\(.graph) \(.error)"' "$out/one.json" >>"$out/errors"
  k=0
  for other in ${COMPARE:-}; do
    k=$((k + 1))
    predicted=$("$edgefleet" device predict --latency-model "$other" --model "$card" --json | jq -r '.predicted_ms')
    jq -r --argjson p "$predicted" '"\(.graph) \($p / .measured_ms - 1)"' "$out/one.json" >>"$out/errors-$k"
  done
done
echo
/usr/bin/python3 - "$out/errors" <<'PY'
import sys
rows = [line.split() for line in open(sys.argv[1])]
def line(label, e):
    within = sum(x <= 0.10 for x in e)
    print(f"{label}within ±10%: {within} of {len(e)} ({100 * within / len(e):.1f}%); median |error| {100 * sorted(e)[len(e) // 2]:.1f}%.")
line("All models: ", [abs(float(x)) for _, x in rows])
for graph in sorted({g for g, _ in rows}):
    line(f"{graph} graph: ", [abs(float(x)) for g, x in rows if g == graph])
PY
k=0
for other in ${COMPARE:-}; do
  k=$((k + 1))
  /usr/bin/python3 - "$out/errors-$k" "$other" <<'PY'
import sys
e = sorted(abs(float(line.split()[1])) for line in open(sys.argv[1]))
within = sum(x <= 0.10 for x in e)
print(f"{sys.argv[2]}, same measurements: within ±10%: {within} of {len(e)} ({100 * within / len(e):.1f}%); median |error| {100 * e[len(e) // 2]:.1f}%.")
PY
done
