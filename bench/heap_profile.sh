#!/usr/bin/env bash
# What the heap keeps per load/unload cycle and per request, measured by a heap profiler
# (Debian heaptrack: every malloc/free with its backtrace), with batching on. Two runs of
# `edgefleet serve --max-batch 8` under heaptrack, each under the same wrk load on the task
# while one variant is unloaded and loaded again C times (a short and a long run); at
# SIGTERM heaptrack reports what was never freed. Memory leaked that grows with the cycles (or
# with the requests) is a leak; the same amount in both runs is the process's static state.
# Prints Markdown, with the top allocation sites still live at exit in the long run.
# Usage: bench/heap_profile.sh [SHORT_CYCLES] [LONG_CYCLES]   (default 10 and 60)
set -euo pipefail
cd "$(dirname "$0")/.."
short=${1:-10}
long=${2:-60}
edgefleet=${EDGEFLEET_BUILD_DIR:-build}/edgefleet
for tool in heaptrack heaptrack_print wrk curl; do
  command -v "$tool" >/dev/null || { echo "needs $tool (scripts/install-deps.sh installs it)" >&2; exit 1; }
done
tmp=$(mktemp -d)
pid=
trap 'pkill -KILL -f "^$edgefleet serve --repository $tmp/repo"; rm -rf "$tmp"' EXIT
source scripts/listening.sh
source bench/lib.sh

"$edgefleet" repository add "$tmp/repo" --task m models/fashion-mnist/cnn_tiny.json models/fashion-mnist/cnn_plain.json >/dev/null
write_binary_request "$tmp/request" "[1, 1, 28, 28]"
write_wrk_reporter "$tmp/post.lua"

# CYCLES -> "requests leaked_bytes peak_bytes" ; the heaptrack file stays in $tmp/heap.CYCLES.*
profile() {
  local cycles=$1
  start_listening "$tmp/serve$cycles" heaptrack -o "$tmp/heap.$cycles" "$edgefleet" serve --repository "$tmp/repo" \
    --port 0 --instances 2 --engine-threads 1 --max-batch 8 --max-queue-delay 2 --warmup 2
  pid=$listening_pid
  local url=$listening_url
  BODY=$tmp/request.bin JSON_LENGTH=$(cat "$tmp/request.json_length") \
    wrk -t1 -c8 -d3600s --timeout 10s -s "$tmp/post.lua" "$url/v2/models/m/infer" >"$tmp/wrk$cycles.out" &
  local load=$!
  for _ in $(seq "$cycles"); do
    curl -sf -X POST "$url/v2/repository/models/cnn_plain/unload" >/dev/null
    curl -sf -X POST "$url/v2/repository/models/cnn_plain/load" >/dev/null
  done
  kill -INT "$load"  # wrk prints its summary on SIGINT
  wait "$load" || true
  local requests
  requests=$(sed -n 's/^RESULT //p' "$tmp/wrk$cycles.out" | awk '{print $5}')
  # SIGTERM to the server itself (the wrapper's cmdline also holds it, hence the anchor);
  # heaptrack then writes its last records and the wrapper exits.
  pkill -TERM -f "^$edgefleet serve --repository $tmp/repo" || true
  wait "$pid" || true
  pid=
  heaptrack_print -f "$tmp/heap.$cycles".*zst* --print-leaks 1 --print-peaks 0 --print-allocators 0 \
    --print-temporary 0 >"$tmp/print$cycles.txt" 2>/dev/null || true
  awk -v r="$requests" '
    function bytes(v, u) { u = v; sub(/[0-9.]+/, "", u); v += 0
      return v * (u == "K" ? 1e3 : u == "M" ? 1e6 : u == "G" ? 1e9 : 1) }
    /^peak heap memory consumption:/ { peak = bytes($5) }
    /^total memory leaked:/ { leaked = bytes($4) }
    END { printf "%s %.0f %.0f\n", r, leaked, peak }' "$tmp/print$cycles.txt"
}

read -r short_requests short_leaked short_peak < <(profile "$short")
read -r long_requests long_leaked long_peak < <(profile "$long")
echo "machine: $(nproc) cores; edgefleet serve --instances 2 --max-batch 8 under heaptrack $(heaptrack --version 2>&1 | awk '{print $NF}'); wrk -c8 on the task while cnn_plain is unloaded and loaded"
echo
echo "| load/unload cycles | requests answered | still allocated at exit | peak heap |"
echo "|---:|---:|---:|---:|"
awk -v c="$short" -v r="$short_requests" -v l="$short_leaked" -v p="$short_peak" 'BEGIN { printf "| %d | %d | %.2f MB | %.1f MB |\n", c, r, l / 1e6, p / 1e6 }'
awk -v c="$long" -v r="$long_requests" -v l="$long_leaked" -v p="$long_peak" 'BEGIN { printf "| %d | %d | %.2f MB | %.1f MB |\n", c, r, l / 1e6, p / 1e6 }'
echo
awk -v a="$short_leaked" -v b="$long_leaked" -v ca="$short" -v cb="$long" -v ra="$short_requests" -v rb="$long_requests" 'BEGIN {
  printf "growth of what stays allocated: %.0f bytes per extra cycle", (b - a) / (cb - ca)
  if (rb != ra) printf " (or %.2f bytes per extra request)", (b - a) / (rb - ra)
  printf "\n" }'
echo
[[ -n ${HEAP_PRINT_OUT:-} ]] && cp "$tmp/print$long.txt" "$HEAP_PRINT_OUT"
echo "Largest allocation sites still live at exit ($long cycles):"
echo
echo '```'
awk '/^MEMORY LEAKS/ { on = 1; next } on && /^[0-9.]+[KMG]? leaked over .* from$/ { n++; if (n > 8) exit; print; frames = 2; next }
     on && frames > 0 && n > 0 { print; frames-- }' "$tmp/print$long.txt"
echo '```'
