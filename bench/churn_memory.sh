#!/usr/bin/env bash
# Resident memory across many load/unload cycles under load: `edgefleet serve --max-batch 8`
# over two zoo variants, wrk on the task, while cnn_plain is unloaded and loaded CYCLES times;
# RSS (from /proc) every 50 cycles. Prints Markdown: the samples and the growth after the first
# 100 cycles (target: < 5%).
# Usage: bench/churn_memory.sh [CYCLES]   (default 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
cycles=${1:-1000}
edgefleet=${EDGEFLEET_BUILD_DIR:-build}/edgefleet
for tool in wrk curl; do command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }; done
tmp=$(mktemp -d)
load=
trap '[[ -n $load ]] && kill "$load" 2>/dev/null; kill $listening_pid 2>/dev/null; rm -rf "$tmp"' EXIT
source scripts/listening.sh
source bench/lib.sh

"$edgefleet" repository add "$tmp/repo" --task m models/fashion-mnist/cnn_tiny.json models/fashion-mnist/cnn_plain.json >/dev/null
write_binary_request "$tmp/request" "[1, 1, 28, 28]"
write_wrk_reporter "$tmp/post.lua"
start_listening "$tmp/serve" "$edgefleet" serve --repository "$tmp/repo" --port 0 --instances 2 --engine-threads 1 \
  --max-batch 8 --max-queue-delay 2 --warmup 2
url=$listening_url
rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$listening_pid/status"; }
BODY=$tmp/request.bin JSON_LENGTH=$(cat "$tmp/request.json_length") \
  wrk -t1 -c16 -d3600s --timeout 10s -s "$tmp/post.lua" "$url/v2/models/m/infer" >"$tmp/wrk.out" &
load=$!
echo "machine: $(nproc) cores; edgefleet serve --instances 2 --max-batch 8; wrk -c16 on the task; cnn_plain unloaded and loaded $cycles times"
echo
echo "| cycles | RSS MB |"
echo "|---:|---:|"
echo "| 0 | $(rss_mb) |"
start=$(date +%s)
declare -A at
for c in $(seq "$cycles"); do
  curl -sf -X POST "$url/v2/repository/models/cnn_plain/unload" >/dev/null
  curl -sf -X POST "$url/v2/repository/models/cnn_plain/load" >/dev/null
  if (( c % 50 == 0 )); then
    at[$c]=$(rss_mb)
    echo "| $c | ${at[$c]} |"
  fi
done
seconds=$(( $(date +%s) - start ))
kill -INT "$load"
wait "$load" || true
load=
read -r rps _ _ errors requests non2xx < <(sed -n 's/^RESULT //p' "$tmp/wrk.out")
echo
echo "$requests requests during the churn ($rps req/s; $non2xx non-2xx, $((errors - non2xx)) socket errors), $cycles cycles in $seconds s"
first=${at[100]:-${at[50]}}
last=${at[$(( cycles / 50 * 50 ))]}
awk -v a="$first" -v b="$last" -v n="$cycles" 'BEGIN { printf "RSS after 100 cycles %.1f MB, after %d: %.1f MB: %+.1f%% (target < 5%%)\n", a, n, b, 100 * (b - a) / a }'
