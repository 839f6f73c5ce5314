#!/usr/bin/env bash
# Serving throughput and latency with a load generator (Debian wrk) at concurrency 1, 16 and
# 64: `edgefleet serve` vs a Python KServe endpoint (bench/python_kserve_server.py) serving the
# same TorchScript model, one after the other in the same run, the same JSON request. Then the
# cost of selection: the same server inferring on the task (selection runs per request)
# versus on the pinned variant. Prints Markdown.
# Usage: bench/compare_serving.sh [CARD.json] [SECONDS]   (default: cnn_tiny, 10 s per point)
set -euo pipefail
cd "$(dirname "$0")/.."
card=${1:-models/fashion-mnist/cnn_tiny.json}
seconds=${2:-10}
edgefleet=${EDGEFLEET_BUILD_DIR:-build}/edgefleet
command -v wrk >/dev/null || { echo "needs wrk (scripts/install-deps.sh installs it)" >&2; exit 1; }
tmp=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"' EXIT

name=$(basename "$card" .json)
model_pt="$(dirname "$card")/$(jq -r .file "$card")"
# One FP32 input of the card's shape, as a KServe JSON request, and wrk's script posting it.
channels=$([[ $(jq -r .input.color "$card") == gray ]] && echo 1 || echo 3)
jq -n --argjson c "$channels" \
  --argjson h "$(jq .input.height "$card")" --argjson w "$(jq .input.width "$card")" \
  '{inputs: [{name: "input", datatype: "FP32", shape: [1, $c, $h, $w], data: [range($c * $h * $w) | (. % 17) / 17]}]}' \
  >"$tmp/request.json"
jq '. + {parameters: {sla_ms: 1000, transfer_ms: 0, policy: "mdinference"}}' "$tmp/request.json" >"$tmp/request_task.json"
cat >"$tmp/post.lua" <<'LUA'
local f = io.open(os.getenv("BODY"), "rb"); local body = f:read("*a"); f:close()
wrk.method = "POST"; wrk.body = body; wrk.headers["Content-Type"] = "application/json"
function done(summary, latency, requests)
  io.write(string.format("RESULT %.1f %.3f %.3f %d %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.requests))
end
LUA

wait_url() {  # FILE -> prints the URL the server printed
  for _ in $(seq 600); do grep -q listening "$1" 2>/dev/null && break; sleep 0.1; done
  sed -n 's/^listening on //p' "$1"
}
load() {  # URL PATH BODY CONNECTIONS -> "req/s p50 p99 errors requests"
  local threads=$(( $4 < 2 ? 1 : 2 ))
  BODY=$3 wrk -t"$threads" -c"$4" -d"${seconds}s" -s "$tmp/post.lua" "$1$2" | sed -n 's/^RESULT //p'
}

# Task "task" holds two copies of the model, so that selection has a choice to make.
"$edgefleet" repository add "$tmp/repo" --task task "$card" >/dev/null
"$edgefleet" repository add "$tmp/repo" --task task --variant "${name}_copy" "$card" >/dev/null
"$edgefleet" serve --repository "$tmp/repo" --port 0 --instances 2 --engine-threads 1 >"$tmp/cpp.out" 2>"$tmp/cpp.log" &
pids+=($!)
cpp_url=$(wait_url "$tmp/cpp.out")
/usr/bin/python3 bench/python_kserve_server.py "$model_pt" 0 1 >"$tmp/py.out" 2>"$tmp/py.log" &
pids+=($!)
py_url=$(wait_url "$tmp/py.out")
[[ -n $cpp_url && -n $py_url ]] || { cat "$tmp/cpp.log" "$tmp/py.log" >&2; exit 1; }

echo "model: $name ($card), $seconds s per point, wrk on the same $(nproc)-core machine"
echo
echo "| concurrency | edgefleet req/s | p50 ms | p99 ms | errors | Python req/s | p50 ms | p99 ms | errors | throughput ratio | p99 ratio (Python / edgefleet) |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for c in 1 16 64; do
  load "$cpp_url" "/v2/models/$name/infer" "$tmp/request.json" 2 >/dev/null  # warm the connection pool
  read -r cr cp50 cp99 cerr _ < <(load "$cpp_url" "/v2/models/$name/infer" "$tmp/request.json" "$c")
  read -r pr pp50 pp99 perr _ < <(load "$py_url" "/v2/models/$name/infer" "$tmp/request.json" "$c")
  awk -v c="$c" -v cr="$cr" -v cp50="$cp50" -v cp99="$cp99" -v cerr="$cerr" -v pr="$pr" -v pp50="$pp50" -v pp99="$pp99" -v perr="$perr" \
    'BEGIN { printf "| %d | %.0f | %.2f | %.2f | %d | %.0f | %.2f | %.2f | %d | %.2fx | %.2fx |\n", c, cr, cp50, cp99, cerr, pr, pp50, pp99, perr, cr / pr, pp99 / cp99 }'
done

echo
echo "Selection overhead: the same edgefleet server, pinned variant vs the task of two copies (sla_ms, transfer_ms, MDInference selection per request):"
echo
echo "| concurrency | pinned req/s | p50 ms | task req/s | p50 ms | p50 difference ms |"
echo "|---:|---:|---:|---:|---:|---:|"
for c in 1 16; do
  read -r ar ap50 _ _ _ < <(load "$cpp_url" "/v2/models/$name/infer" "$tmp/request.json" "$c")
  read -r br bp50 _ _ _ < <(load "$cpp_url" "/v2/models/task/infer" "$tmp/request_task.json" "$c")
  awk -v c="$c" -v ar="$ar" -v ap="$ap50" -v br="$br" -v bp="$bp50" \
    'BEGIN { printf "| %d | %.0f | %.3f | %.0f | %.3f | %.3f |\n", c, ar, ap, br, bp, bp - ap }'
done
