#!/usr/bin/env bash
# Beyond the paper: duplicate only when it pays. MDInference at SLA 250 ms on the university and
# residential networks of the Table IV setting, the client racing its on-device model on every
# request (the paper), never, or only when its running network estimate makes a remote miss
# more likely than a threshold. Prints Markdown.
# Then the same through the real server and client (REAL_SERVER=0 skips it; REQUESTS=N, default 600).
# Usage: bench/adaptive_duplication.sh [ZOO] [NETWORK_SAMPLE]   (default: paper-table3 round-trip)
set -euo pipefail
cd "$(dirname "$0")/.."
edgefleet=${EDGEFLEET_BUILD_DIR:-build}/edgefleet
zoo=${1:-paper-table3}
sample=${2:-round-trip}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "| network | duplication | aggregate accuracy | SLA attainment | answers from the local model | requests that ran the local model |"
echo "|---|---|---:|---:|---:|---:|"
for net in university:normal:57.87:30.79 residential:normal:92.02:48.38; do
  name=${net%%:*} spec=${net#*:}
  for mode in always never adaptive:0.01 adaptive:0.05; do
    case $mode in
      always) flags=() ;;
      never) flags=(--no-duplicate) ;;
      adaptive:*) flags=(--duplicate-above "${mode#adaptive:}") ;;
    esac
    "$edgefleet" simulate --zoo "$zoo" --sla 250 --network "$spec" --network-sample "$sample" --policy mdinference \
      "${flags[@]}" --out "$tmp/o" >/dev/null
    jq -r --arg n "$name" --arg m "$mode" \
      '.[0] | "| \($n) | \($m) | \(100*.aggregate_accuracy*100|round/100)% | \(100*.sla_attainment*100|round/100)% | \(100*.on_device_reliance*100|round/100)% | \(100*.local_runs*100|round/100)% |"' \
      "$tmp/o/results.json"
  done
done

# Through the real server: `edgefleet serve` over the fashion-mnist zoo, `edgefleet infer`
# replaying the test set with the network emulated on loopback (round trips drawn from the
# same university and residential models), racing cnn_tiny on the device always, never, or
# adaptively; at SLA 250 ms (the setting above) and 100 ms (where a remote miss is neither
# certain nor impossible).
if [[ ${REAL_SERVER:-1} == 1 ]]; then
  source scripts/listening.sh
  requests=${REQUESTS:-600}
  "$edgefleet" repository add "$tmp/repo" --task fashion-mnist models/fashion-mnist/*.json >/dev/null
  start_listening "$tmp/serve" "$edgefleet" serve --repository "$tmp/repo" --port 0 --warmup 20
  trap 'kill $listening_pid 2>/dev/null; rm -rf "$tmp"' EXIT
  echo
  echo "Through the real server: $requests fashion-mnist test images per row, 4 clients, on-device model cnn_tiny"
  echo
  echo "| SLA ms | network | duplication | aggregate accuracy | SLA attainment | answers from the local model | requests that ran the local model | p99 ms |"
  echo "|---:|---|---|---:|---:|---:|---:|---:|"
  for sla in 250 100; do
    for net in university:normal:57.87:30.79 residential:normal:92.02:48.38; do
      name=${net%%:*} spec=${net#*:}
      for mode in always never adaptive:0.01 adaptive:0.05; do
        case $mode in
          always) flags=(--local cnn_tiny) ;;
          never) flags=() ;;
          adaptive:*) flags=(--local cnn_tiny --duplicate-above "${mode#adaptive:}") ;;
        esac
        "$edgefleet" infer --url "$listening_url" --model fashion-mnist --sla "$sla" --network "$spec" --data fashion-mnist \
          --requests "$requests" --concurrency 4 "${flags[@]}" --out "$tmp/real.json" >/dev/null 2>&1 || true
        jq -r --arg s "$sla" --arg n "$name" --arg m "$mode" \
          '"| \($s) | \($n) | \($m) | \(100*.aggregate_accuracy*100|round/100)% | \(100*.sla_attainment*100|round/100)% | \(100*.on_device_reliance*100|round/100)% | \(100*.local_runs*100|round/100)% | \(.p99_latency_ms*10|round/10) |"' \
          "$tmp/real.json"
      done
    done
  done
fi
