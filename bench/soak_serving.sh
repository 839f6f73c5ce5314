#!/usr/bin/env bash
# Soak: `edgefleet serve` with the built-in zoo as one task under wrk at concurrency 64 for
# SECONDS, while variants are unloaded and loaded again every few seconds. Reports the answers
# by HTTP status (from the server's /metrics and wrk), the server's resident memory over time,
# and fails if any request failed other than deliberately: shed with 503 (queue full) or 504
# (its deadline passed while queued, so it never reached a model).
# Usage: bench/soak_serving.sh [SECONDS] [CONCURRENCY]   (default: 600 s, 64)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
connections=${2:-64}
edgefleet=${EDGEFLEET_BUILD_DIR:-build}/edgefleet
tmp=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"' EXIT

"$edgefleet" repository add "$tmp/repo" --task fashion-mnist models/fashion-mnist/*.json >/dev/null
"$edgefleet" serve --repository "$tmp/repo" --port 0 --max-queue 32 >"$tmp/serve.out" 2>"$tmp/serve.log" &
server=$!
pids+=($server)
for _ in $(seq 1200); do grep -q listening "$tmp/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$tmp/serve.out")
[[ -n $url ]] || { cat "$tmp/serve.log" >&2; exit 1; }

# A 28x28 request with an SLA: the server picks among the task's variants per request.
jq -n '{parameters: {sla_ms: 20, transfer_ms: 5}, inputs: [{name: "input", datatype: "FP32", shape: [1, 1, 28, 28],
        data: [range(784) | (. % 17) / 17]}]}' >"$tmp/request.json"
cat >"$tmp/post.lua" <<'LUA'
local f = io.open(os.getenv("BODY"), "rb"); local body = f:read("*a"); f:close()
wrk.method = "POST"; wrk.body = body; wrk.headers["Content-Type"] = "application/json"
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %.1f %.3f %.3f %d %d\n", summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA

rss_mb() { awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$server/status"; }
echo "soak: ${seconds}s at concurrency $connections on $url, variants unloaded and reloaded every 5 s"
BODY=$tmp/request.json wrk -t2 -c"$connections" -d"${seconds}s" --timeout 10s -s "$tmp/post.lua" "$url/v2/models/fashion-mnist/infer" \
  >"$tmp/wrk.out" &
load=$!
pids+=($load)

variants=(resnet_s cnn_plain mobilenetv2_w100 mobilenetv2_w050-onnx)
start=$SECONDS
cycles=0
echo "| elapsed s | server RSS MB |"
echo "|---:|---:|"
while kill -0 $load 2>/dev/null; do
  v=${variants[$((cycles % ${#variants[@]}))]}
  curl -sf -X POST -d '{}' "$url/v2/repository/models/$v/unload" >/dev/null
  sleep 2.5
  curl -sf -X POST -d '{}' "$url/v2/repository/models/$v/load" >/dev/null
  sleep 2.5
  cycles=$((cycles + 1))
  (( cycles % 12 == 1 )) && echo "| $((SECONDS - start)) | $(rss_mb) |"
done
wait $load || true
echo "| $((SECONDS - start)) | $(rss_mb) |"
read -r total rate p50 p99 non2xx socket < <(sed -n 's/^RESULT //p' "$tmp/wrk.out")
echo
echo "requests $total ($rate/s), p50 $p50 ms, p99 $p99 ms; wrk: $non2xx non-2xx answers, $socket socket errors; $cycles unload/load cycles"
echo
echo "server's answers by status (/metrics):"
curl -s "$url/metrics" | grep -E '^edgefleet_(requests_total|request_failures_total|shed_total)' | sed 's/^/    /'
failed=$(curl -s "$url/metrics" | awk '/^edgefleet_request_failures_total/ && !/code="50[34]"/ { n += $2 } END { print n + 0 }')
kill -TERM $server && wait $server
pids=()
if (( failed > 0 || socket > 0 )); then
  echo "FAIL: $failed failed requests other than shed (503) or past their deadline (504), $socket socket errors" >&2
  exit 1
fi
echo "OK: no request failed except those shed (503) or past their deadline (504)"
