#!/usr/bin/env bash
# Decode and resize megapixels/s: edgefleet's stages (bench_imaging) vs the same operations in
# Python (Debian python3-pil, python3-opencv), one thread each, on the same N pictures, in one
# run. Prints a Markdown table with ratio = edgefleet / Python (>= 1.0: edgefleet not slower).
# Usage: bench/compare_imaging.sh [N=50] [SOURCE_DIR=../shared/imagenet/images]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50}
source_dir=${2:-../shared/imagenet/images}
build=${EDGEFLEET_BUILD_DIR:-build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 bench/python_imaging.py prepare "$source_dir" "$work" "$n"
# Rates are per second of process CPU time on both sides (wall time on this shared 2-core VM
# drifts by 20-30% from minute to minute), and the best of two alternating rounds.
cpp_runs=() py_runs=()
for round in 1 2; do
  cpp_runs+=("$(EDGEFLEET_BENCH_IMAGES="$work" "$build"/bench/bench_imaging --benchmark_format=json \
    --benchmark_min_time=0.3 --benchmark_repetitions=5 2>/dev/null)")
  py_runs+=("$(/usr/bin/python3 bench/python_imaging.py run "$work" 2>/dev/null)")
done
cpp=$(printf '%s\n' "${cpp_runs[@]}" | /usr/bin/python3 -c 'import json,sys; d=sys.stdin.read(); dec=json.JSONDecoder(); out=[]; i=0
while i < len(d):
    d2=d[i:].lstrip()
    if not d2: break
    o,n=dec.raw_decode(d2); out+=o["benchmarks"]; i=len(d)-len(d2)+n
print(json.dumps({"benchmarks": out}))')
py=$(printf '%s\n' "${py_runs[@]}" | /usr/bin/python3 -c 'import json,sys
best={}
for line in sys.stdin:
    if not line.strip(): continue
    for k,v in json.loads(line).items():
        for lib,r in v.items(): best.setdefault(k,{})[lib]=max(best.get(k,{}).get(lib,0.0),r)
print(json.dumps(best))')
/usr/bin/python3 - "$cpp" "$py" "$n" <<'PY'
import json, sys
cpp = {}
for b in json.loads(sys.argv[1])["benchmarks"]:
    if b.get("run_type") == "iteration":  # best of the repetitions, as Python takes its best pass
        name = b["name"].split("/process_time")[0].split("/real_time")[0].split("/min_time")[0]
        cpp[name] = max(cpp.get(name, 0.0), b["MP/s"])
py = json.loads(sys.argv[2])
# (edgefleet stage, Python operation it is compared with: same library or same filter)
pairs = [
    ("decode/jpeg/turbojpeg", "decode/jpeg", "pil"), ("decode/jpeg/turbojpeg", "decode/jpeg", "cv2"),
    ("decode/jpeg/opencv", "decode/jpeg", "cv2"),
    ("decode/png/libpng", "decode/png", "pil"), ("decode/png/libpng", "decode/png", "cv2"),
    ("decode/png/opencv", "decode/png", "cv2"),
    ("decode/webp/libwebp", "decode/webp", "pil"), ("decode/webp/libwebp", "decode/webp", "cv2"),
    ("decode/webp/opencv", "decode/webp", "cv2"),
    ("resize/opencv-linear", "resize/linear", "cv2"), ("resize/opencv-area", "resize/area", "cv2"),
    ("resize/opencv-cubic", "resize/cubic", "cv2"), ("resize/opencv-lanczos4", "resize/lanczos4", "cv2"),
    ("resize/torch-bilinear-antialias", "resize/bilinear-antialias", "torch"),
    ("resize/torch-bicubic-antialias", "resize/bicubic-antialias", "torch"),
]
print(f"{sys.argv[3]} ImageNet pictures, one thread; resize = shorter side to 256; MP/s = source megapixels per second of process CPU time\n")
print("| edgefleet stage | MP/s | Python operation | MP/s | ratio |")
print("|---|---:|---|---:|---:|")
worst = float("inf")
for mine, theirs, lib in pairs:
    a, b = cpp[mine], py[theirs][lib]
    worst = min(worst, a / b)
    label = {"pil": "PIL", "cv2": "cv2", "torch": "torch"}[lib] + " " + theirs
    print(f"| {mine} | {a:.1f} | {label} | {b:.1f} | {a / b:.2f} |")
print(f"\nlowest ratio: {worst:.2f}")
# The same filter from another implementation, for information (not the same operation).
for mine, theirs in (("resize/torch-bilinear-antialias", "resize/bilinear-antialias"),
                     ("resize/torch-bicubic-antialias", "resize/bicubic-antialias")):
    print(f"\nfor information: {mine} {cpp[mine]:.1f} MP/s vs PIL's own {theirs} {py[theirs]['pil']:.1f} MP/s "
          f"(ratio {cpp[mine] / py[theirs]['pil']:.2f}; PIL filters bytes in fixed point, libtorch 1.13 only floats)")
print("\nwithout a Python counterpart: " + ", ".join(f"{k} {v:.1f}" for k, v in cpp.items()
      if k not in {p[0] for p in pairs}))
PY
