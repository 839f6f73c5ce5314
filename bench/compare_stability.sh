#!/usr/bin/env bash
# Stability-run throughput (image-environment evaluations per second, wall clock, best of 2
# rounds) for two sets of 8 environments on the same N photos and model, in one run:
#   together     edgefleet, all 8 environments in one run (shared prefixes, batches, 2 cores)
#   independent  edgefleet, each environment in its own run, one after the other
#   python       bench/python_stability.py (PIL + cv2 + torch, decoding each photo once)
# and a third set, every source at once (all `--axis` values: 50 environments), timed through
# the edgefleet binary as users run it (model load, INT8 calibration, summary and report
# included), together vs each axis in its own run (one source at a time, as a user without
# the all-axes run would), on N_ALL photos; and the same set in-process as the 8-environment
# sets are timed (each environment in a run of its own). The Python script cannot express the
# whole set (camera ISPs, sensor noise, limited-range colour, ImageMagick/libvips, HEIF, fp16
# and INT8 emulation, ceil-mode rewrites): its column says so, and a fourth row compares the
# 22 environments it can express (bench/stability_envs_python.txt) through both.
# Usage: bench/compare_stability.sh [N=100] [MODEL=../shared/imagenet/models/mobilenet_v1_0.25.json]
#        [DATA=../shared/imagenet/images] [N_ALL=40]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100}
model=${2:-../shared/imagenet/models/mobilenet_v1_0.25.json}
data=${3:-../shared/imagenet/images}
n_all=${4:-40}
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

# Every source at once. The engine axis needs the model's ONNX copy beside it: the model is
# copied to a scratch folder and exported there (edgefleet export).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stem=$(basename "$model" .json)
cp "$(dirname "$model")/$stem".{json,pt} "$work/"
"$build"/edgefleet export --model "$work/$stem.json" --json >/dev/null
# Every source the Python script can express (22 of the 50 environments, named and listed in
# bench/stability_envs_python.txt), the same file through both, on N photos, one round.
cpp=$("$build"/bench/bench_stability "$work/$stem.json" "$data" "$n" bench/stability_envs_python.txt 1)
py=$(/usr/bin/python3 bench/python_stability.py "$work/$stem.json" "$data" "$n" bench/stability_envs_python.txt 1)
/usr/bin/python3 - "$cpp" "$py" <<'PY'
import json, sys
cpp, py = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"| every source the script can express ({cpp['environments']} of the all-axes environments, {cpp['images']} photos, one round) | "
      f"{cpp['together_evals_per_s']:.1f} | {cpp['independent_evals_per_s']:.1f} | {cpp['ratio']:.2f}x | "
      f"{py['evals_per_s']:.1f} | {cpp['together_evals_per_s'] / py['evals_per_s']:.2f}x |")
PY
axes=()
for a in jpeg-quality format decoder resize color isp sensor-noise precision engine ceil-mode threads; do axes+=(--axis "$a"); done
# INT8 calibrates on the same photos (a throughput benchmark, not an accuracy figure).
common=(--model "$work/$stem.json" --data "$data" --limit "$n_all" --calibration "$data")
started=$EPOCHREALTIME
"$build"/edgefleet stability run "${common[@]}" "${axes[@]}" --out "$work/together" >"$work/together.log"
together_s=$(/usr/bin/python3 -c "print($EPOCHREALTIME - $started)")
started=$EPOCHREALTIME
for a in jpeg-quality format decoder resize color isp sensor-noise precision engine ceil-mode threads; do
  "$build"/edgefleet stability run "${common[@]}" --axis "$a" --out "$work/alone-$a" >"$work/alone-$a.log"
done
independent_s=$(/usr/bin/python3 -c "print($EPOCHREALTIME - $started)")
environments=$(/usr/bin/python3 -c "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT COUNT(*) FROM environments').fetchone()[0])" "$work/together/results.sqlite")
evals=$((n_all * environments))
shared=$(grep -o 'inferences shared [0-9]*' "$work/together.log" | grep -o '[0-9]*$')
/usr/bin/python3 - "$evals" "$together_s" "$independent_s" "$environments" "$n_all" "$shared" <<'PY'
import sys
evals, together, independent, envs, n, shared = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
print(f"| every source at once ({envs} environments, {n} photos, the edgefleet binary; {shared} inferences shared) | "
      f"{evals / together:.1f} | {evals / independent:.1f} (11 runs, one per axis) | {independent / together:.2f}x | not expressible in the script | - |")
PY
# The same set as the 8-environment sets are timed (in-process, each environment in a run of
# its own: the same code with nothing to share), best of 1 round.
cpp=$("$build"/bench/bench_stability "$work/$stem.json" "$data" "$n_all" all-axes 1)
/usr/bin/python3 - "$cpp" <<'PY'
import json, sys
cpp = json.loads(sys.argv[1])
print(f"| every source at once ({cpp['environments']} environments, {cpp['images']} photos, in-process as the sets above) | "
      f"{cpp['together_evals_per_s']:.1f} | {cpp['independent_evals_per_s']:.1f} (one run per environment) | {cpp['ratio']:.2f}x | "
      f"not expressible in the script | - |")
PY
