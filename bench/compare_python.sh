#!/usr/bin/env bash
# Inference throughput of the built-in zoo: edgefleet (C++, bench_zoo_throughput) vs the same
# TorchScript files run from Python (Debian python3-torch), in one run, same thread count.
# Prints a Markdown table with the ratio edgefleet / Python (>= 1.0: edgefleet not slower).
# Usage: bench/compare_python.sh [THREADS] [CARD.json...]   (default: all cores, the whole zoo)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-$(nproc)}
shift || true
cards=("$@")
if [[ ${#cards[@]} -eq 0 ]]; then
  for c in models/fashion-mnist/*.json; do [[ $c == *.onnx.json ]] || cards+=("$c"); done
fi
build=${EDGEFLEET_BUILD_DIR:-build}
model_flags=()
for c in "${cards[@]}"; do model_flags+=("--model=$c"); done
cpp=$("$build"/bench/bench_zoo_throughput "${model_flags[@]}" --threads="$threads" --benchmark_format=json 2>/dev/null)
py=$(/usr/bin/python3 bench/python_zoo_throughput.py --threads "$threads" "${cards[@]}" 2>/dev/null)
/usr/bin/python3 - "$cpp" "$py" "$threads" <<'PY'
import json, sys
cpp = {b["name"].split("/min_time")[0]: b["items_per_second"] for b in json.loads(sys.argv[1])["benchmarks"]}
py = json.loads(sys.argv[2])
print(f"threads: {sys.argv[3]}\n")
print("| model / batch | edgefleet img/s | Python img/s | ratio | Python frozen+optimized img/s | ratio |")
print("|---|---:|---:|---:|---:|---:|")
worst = float("inf")
for name, rates in py.items():
    mine = cpp[name]
    r1, r2 = mine / rates["python"], mine / rates["python_optimized"]
    worst = min(worst, r1)
    print(f"| {name} | {mine:.0f} | {rates['python']:.0f} | {r1:.2f} | {rates['python_optimized']:.0f} | {r2:.2f} |")
print(f"\nlowest ratio vs plain Python: {worst:.2f}")
PY
