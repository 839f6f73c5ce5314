#!/usr/bin/env bash
# Slow clients against health checks: `edgefleet serve` under slowhttptest's slow-headers
# attack (200 connections, a header line every 10 s) while /v2/health/live is polled every
# 0.25 s from another client. Reports the health latency before (the baseline) and during the
# attack, and fails if any health check took 1 s or more, or failed.
# Usage: bench/slowloris.sh [CONNECTIONS] [SECONDS]   (default: 200, 40)
set -euo pipefail
cd "$(dirname "$0")/.."
connections=${1:-200}
seconds=${2:-40}
edgefleet=${EDGEFLEET_BUILD_DIR:-build}/edgefleet
command -v slowhttptest >/dev/null || { echo "slowhttptest is not installed (scripts/install-deps.sh installs it)" >&2; exit 1; }
tmp=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"' EXIT

"$edgefleet" repository add "$tmp/repo" --task fashion-mnist cnn_tiny >/dev/null
"$edgefleet" serve --repository "$tmp/repo" --port 0 >"$tmp/serve.out" 2>"$tmp/serve.log" &
pids+=($!)
for _ in $(seq 600); do grep -q listening "$tmp/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$tmp/serve.out")
[[ -n $url ]] || { cat "$tmp/serve.log" >&2; exit 1; }

# Health latencies (seconds; 9 for a failed check) from 127.0.0.2, one per line, for $1 s.
probe() {
  local until=$((SECONDS + $1))
  while (( SECONDS < until )); do
    curl -s -o /dev/null --interface 127.0.0.2 --max-time 5 -w '%{time_total}\n' "$url/v2/health/live" || echo 9
    sleep 0.25
  done
}
summary() {
  sort -n "$1" | awk '{ v[NR] = $1 } END { p = int(NR * 0.99) + 1; if (p > NR) p = NR;
    printf "%d checks, median %.4f s, p99 %.4f s, max %.4f s", NR, v[int(NR / 2) + 1], v[p], v[NR] }'
}

probe 5 >"$tmp/before.txt"
slowhttptest -c "$connections" -H -i 10 -r 100 -l "$seconds" -u "$url/v2/health/live" -x 24 -p 3 >"$tmp/attack.log" 2>&1 &
attack=$!
pids+=($attack)
sleep 1
probe $((seconds - 2)) >"$tmp/during.txt"
wait $attack || true
echo "slowhttptest -c $connections -H -i 10 -r 100 -l $seconds -x 24 -p 3 against $url/v2/health/live"
grep -E "pending|connected|closed|service available" "$tmp/attack.log" | tail -4 || true
echo "health before the attack: $(summary "$tmp/before.txt")"
echo "health during the attack: $(summary "$tmp/during.txt")"
worst=$(sort -n "$tmp/during.txt" | tail -1)
awk -v w="$worst" 'BEGIN { exit !(w < 1.0) }' || { echo "FAILED: a health check took ${worst} s (limit 1 s)"; exit 1; }
echo "OK: every health check answered within 1 s"
