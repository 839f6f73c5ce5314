#!/usr/bin/env bash
# Stability-run throughput (image-environment evaluations per second, wall clock, best of 2
# rounds) for two sets of 8 environments on the same N photos and model, in one run:
#   together     edgefleet, all 8 environments in one run (shared prefixes, batches, 2 cores)
#   independent  edgefleet, each environment in its own run, one after the other
#   python       bench/python_stability.py (PIL + cv2 + torch, decoding each photo once)
# Usage: bench/compare_stability.sh [N=100] [MODEL=../shared/imagenet/models/mobilenet_v1_0.25.json]
#        [DATA=../shared/imagenet/images]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100}
model=${2:-../shared/imagenet/models/mobilenet_v1_0.25.json}
data=${3:-../shared/imagenet/images}
build=${EDGEFLEET_BUILD_DIR:-build}
if [[ ! -f "$model" ]]; then echo "compare_stability: no model '$model' (needs ../shared)"; exit 0; fi
echo "| environments (8) | together evals/s | independent evals/s | together / independent | python evals/s | together / python |"
echo "|---|---|---|---|---|---|"
for set in bench/stability_envs.txt bench/stability_envs_resize.txt; do
  cpp=$("$build"/bench/bench_stability "$model" "$data" "$n" "$set" 2)
  py=$(/usr/bin/python3 bench/python_stability.py "$model" "$data" "$n" "$set" 2)
  /usr/bin/python3 - "$set" "$cpp" "$py" <<'PY'
import json, sys
name, cpp, py = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
label = {"bench/stability_envs.txt": "re-encoded (JPEG q100/85/50/20, PNG, WebP, lossless WebP, original)",
         "bench/stability_envs_resize.txt": "resizers after one decode (OpenCV x6, libtorch x2)"}[name]
print(f"| {label} | {cpp['together_evals_per_s']:.1f} | {cpp['independent_evals_per_s']:.1f} | "
      f"{cpp['ratio']:.2f}x | {py['evals_per_s']:.1f} | {cpp['together_evals_per_s'] / py['evals_per_s']:.2f}x |")
PY
done
