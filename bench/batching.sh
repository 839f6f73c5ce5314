#!/usr/bin/env bash
# Dynamic batching on vs off, in the same run: `edgefleet serve` with 2 model copies of one
# thread each, unbatched (--max-batch 1) and batched (--max-batch B --max-queue-delay D), under
# wrk at concurrency 1, 16 and 64, with binary FP32 requests (KServe binary tensor extension).
# Beside it, the offline ceiling: the engine alone at batch 1..B (edgefleet profile, one
# thread), times the 2 copies — what the server could at best reach on these cores.
# Prints Markdown.
# Usage: bench/batching.sh [SECONDS] [CARD.json ...]
#   default: 10 s per point; ../shared/imagenet/models/mobilenet_v2_1.0.json when present and
#   the smallest zoo model, models/fashion-mnist/cnn_tiny.json
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
shift || true
cards=("$@")
if [[ ${#cards[@]} -eq 0 ]]; then
  [[ -f ../shared/imagenet/models/mobilenet_v2_1.0.json ]] && cards+=(../shared/imagenet/models/mobilenet_v2_1.0.json)
  cards+=(models/fashion-mnist/cnn_tiny.json)
fi
max_batch=${MAX_BATCH:-8}
delay_ms=${MAX_QUEUE_DELAY_MS:-5}
edgefleet=${EDGEFLEET_BUILD_DIR:-build}/edgefleet
command -v wrk >/dev/null || { echo "needs wrk (scripts/install-deps.sh installs it)" >&2; exit 1; }
tmp=$(mktemp -d)
pid=
trap '[[ -n $pid ]] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
url=

cat >"$tmp/post.lua" <<'LUA'
local f = io.open(os.getenv("BODY"), "rb"); local body = f:read("*a"); f:close()
wrk.method = "POST"; wrk.body = body
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Inference-Header-Content-Length"] = os.getenv("JSON_LENGTH")
function done(summary, latency, requests)
  io.write(string.format("RESULT %.1f %.3f %.3f %d %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.requests))
end
LUA

wait_url() {  # FILE -> the URL the server printed
  for _ in $(seq 1200); do grep -q listening "$1" 2>/dev/null && break; sleep 0.1; done
  sed -n 's/^listening on //p' "$1"
}
load() {  # URL CONNECTIONS -> "req/s p50 p99 errors requests"
  local threads=$(( $2 < 2 ? 1 : 2 ))
  BODY=$tmp/request.bin JSON_LENGTH=$(cat "$tmp/json_length") \
    wrk -t"$threads" -c"$2" -d"${seconds}s" --timeout 10s -s "$tmp/post.lua" "$1/v2/models/m/infer" | sed -n 's/^RESULT //p'
}
serve() {  # MAX_BATCH DELAY_MS: starts the server ($pid) and sets $url
  "$edgefleet" serve --repository "$tmp/repo" --port 0 --instances 2 --engine-threads 1 --threads 128 \
    --max-batch "$1" --max-queue-delay "$2" --max-queue 256 >"$tmp/serve.out" 2>"$tmp/serve.log" &
  pid=$!
  url=$(wait_url "$tmp/serve.out")
  [[ -n $url ]] || { cat "$tmp/serve.log" >&2; exit 1; }
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

echo "machine: $(nproc) cores; server: 2 copies x 1 engine thread, wrk on the same machine; $seconds s per point;"
echo "batched = --max-batch $max_batch --max-queue-delay $delay_ms"
for card in "${cards[@]}"; do
  name=$(basename "$card" .json)
  rm -rf "$tmp/repo"
  "$edgefleet" repository add "$tmp/repo" --task t --variant m "$card" >/dev/null
  channels=$([[ $(jq -r .input.color "$card") == gray ]] && echo 1 || echo 3)
  h=$(jq .input.height "$card") w=$(jq .input.width "$card")
  /usr/bin/python3 - "$tmp" "$channels" "$h" "$w" <<'PY'
import json, struct, sys, random
tmp, c, h, w = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
n = c * h * w
random.seed(1)
data = struct.pack("<%df" % n, *[random.uniform(-1, 1) for _ in range(n)])
header = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, c, h, w],
                                 "parameters": {"binary_data_size": len(data)}}]}).encode()
open(tmp + "/request.bin", "wb").write(header + data)
open(tmp + "/json_length", "w").write(str(len(header)))
PY
  echo
  echo "### $name ($card)"
  echo
  echo "Offline engine (edgefleet profile, 1 thread, one copy; ceiling = 2 copies x best img/s):"
  echo
  echo "| batch | ms per batch | img/s (one copy) |"
  echo "|---:|---:|---:|"
  best=0
  for b in 1 2 4 $max_batch; do
    ms=$("$edgefleet" profile --repository "$tmp/repo" --out "$tmp/profile" --batch "$b" --threads 1 --runs 20 --warmup 3 2>/dev/null |
      sed -n 's/^[^ ]*: \([0-9.]*\) +-.*/\1/p')
    ips=$(awk -v b="$b" -v ms="$ms" 'BEGIN { printf "%.1f", b * 1000 / ms }')
    best=$(awk -v a="$best" -v b="$ips" 'BEGIN { print (b > a ? b : a) }')
    echo "| $b | $ms | $ips |"
  done
  ceiling=$(awk -v b="$best" 'BEGIN { printf "%.1f", 2 * b }')
  echo
  echo "Ceiling: $ceiling img/s"
  echo
  echo "| concurrency | unbatched req/s | p50 ms | p99 ms | errors | batched req/s | p50 ms | p99 ms | errors | batched / unbatched | batched / ceiling |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  declare -A off=()
  serve 1 0
  for c in 1 16 64; do load "$url" 2 >/dev/null; off[$c]=$(load "$url" "$c"); done
  stop
  serve "$max_batch" "$delay_ms"
  for c in 1 16 64; do
    load "$url" 2 >/dev/null
    read -r br bp50 bp99 berr _ < <(load "$url" "$c")
    read -r ur up50 up99 uerr _ <<<"${off[$c]}"
    awk -v c="$c" -v ur="$ur" -v up50="$up50" -v up99="$up99" -v uerr="$uerr" -v br="$br" -v bp50="$bp50" -v bp99="$bp99" -v berr="$berr" -v ceil="$ceiling" \
      'BEGIN { printf "| %d | %.1f | %.1f | %.1f | %d | %.1f | %.1f | %.1f | %d | %.2fx | %.0f%% |\n", c, ur, up50, up99, uerr, br, bp50, bp99, berr, br / ur, 100 * br / ceil }'
  done
  stop
done
