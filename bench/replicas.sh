#!/usr/bin/env bash
# Replicas behind HAProxy, one killed mid-load: R replicas of `edgefleet serve` on loopback
# behind HAProxy (Debian haproxy, round robin, health check on /v2/health/ready); wrk posts
# binary FP32 inferences through HAProxy for SECONDS; at a third of the run one replica is
# killed with SIGKILL and at half the run it is restarted on the same port. Prints what the
# load generator saw (requests, non-2xx answers, socket errors), what HAProxy did (retries,
# redispatches, the killed replica's state changes), and the replicas' own counts.
#
# HAProxy's policy (docs/deploy.md): inference is idempotent, so a request whose replica
# refused the connection, closed it without an answer or answered 503 is sent again, to
# another replica (retry-on conn-failure empty-response 503, retries 3, option redispatch 1);
# health checks every 250 ms take a dead replica out after one failure and a restarted one
# back in after two successes, once it is ready (its variants loaded and warmed up).
# Each replica learns its own latency profiles: selection in one replica knows nothing of
# the others' queues.
# Usage: [RETRY_ON="..."] bench/replicas.sh [SECONDS] [REPLICAS] [CONNECTIONS] [CARD.json]
#   default: 30 s, 3 replicas, 32 connections, models/fashion-mnist/cnn_tiny.json;
#   RETRY_ON replaces the retry-on policy (e.g. "conn-failure", HAProxy's default, as a control)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
replicas=${2:-3}
connections=${3:-32}
card=${4:-models/fashion-mnist/cnn_tiny.json}
retry_on=${RETRY_ON:-conn-failure empty-response 503}
edgefleet=${EDGEFLEET_BUILD_DIR:-build}/edgefleet
for tool in wrk haproxy jq curl; do
  command -v "$tool" >/dev/null || { echo "needs $tool (scripts/install-deps.sh installs it)" >&2; exit 1; }
done
(( replicas >= 2 )) || { echo "needs at least 2 replicas" >&2; exit 1; }
tmp=$(mktemp -d)
pids=()
haproxy_pid=
cleanup() {
  for p in "${pids[@]}" $haproxy_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
source scripts/listening.sh
source bench/lib.sh

"$edgefleet" repository add "$tmp/repo" --task m --variant model "$card" >/dev/null
serve_replica() {  # INDEX PORT
  start_listening "$tmp/replica$1" "$edgefleet" serve --repository "$tmp/repo" --port "$2" --instances 1 \
    --engine-threads 1 --max-queue 256 --warmup 20
  pids[$1]=$listening_pid
  ports[$1]=${listening_url##*:}
}
ports=()
for i in $(seq 0 $((replicas - 1))); do serve_replica "$i" 0; done
frontend=$(free_port)
stats=$(free_port)

{
  cat <<CFG
global
  maxconn 4096
  tune.bufsize 65536
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 10s
  timeout check 1s
  retries 3
  option redispatch 1
  retry-on $retry_on
frontend inference
  bind 127.0.0.1:$frontend
  default_backend replicas
listen stats
  bind 127.0.0.1:$stats
  stats enable
  stats uri /stats
backend replicas
  balance roundrobin
  option httpchk GET /v2/health/ready
  http-check expect status 200
CFG
  for i in "${!ports[@]}"; do echo "  server replica$i 127.0.0.1:${ports[$i]} check inter 250 fall 1 rise 2"; done
} >"$tmp/haproxy.cfg"
haproxy -c -q -f "$tmp/haproxy.cfg"
haproxy -db -f "$tmp/haproxy.cfg" >"$tmp/haproxy.log" 2>&1 &
haproxy_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$frontend/v2/health/ready" >/dev/null && break; sleep 0.1; done

shape=$(curl -s "http://127.0.0.1:$frontend/v2/models/m" | jq -c '.inputs[0].shape | .[0] = 1')
write_binary_request "$tmp/request" "$shape"
write_wrk_reporter "$tmp/post.lua"

victim=$((replicas - 1))
(
  sleep "$(awk -v s="$seconds" 'BEGIN { print s / 3 }')"
  kill -KILL "${pids[$victim]}" 2>/dev/null
  echo "killed replica$victim (pid ${pids[$victim]}) at $(date +%s.%N)" >>"$tmp/events"
  sleep "$(awk -v s="$seconds" 'BEGIN { print s / 2 - s / 3 }')"
  "$edgefleet" serve --repository "$tmp/repo" --port "${ports[$victim]}" --instances 1 --engine-threads 1 \
    --max-queue 256 --warmup 20 >"$tmp/restarted.out" 2>"$tmp/restarted.log" &
  echo $! >"$tmp/restarted.pid"
  echo "restarted replica$victim on port ${ports[$victim]} at $(date +%s.%N)" >>"$tmp/events"
) &
chaos=$!
start=$(date +%s.%N)
read -r rps p50 p99 errors requests non2xx < <(BODY=$tmp/request.bin JSON_LENGTH=$(cat "$tmp/request.json_length") \
  wrk -t2 -c"$connections" -d"${seconds}s" --timeout 10s -s "$tmp/post.lua" "http://127.0.0.1:$frontend/v2/models/m/infer" |
  sed -n 's/^RESULT //p')
wait "$chaos"
pids+=("$(cat "$tmp/restarted.pid")")
back=no
for _ in $(seq 50); do
  curl -s "http://127.0.0.1:$stats/stats;csv" | awk -F, -v s="replica$victim" '$2 == s && $18 == "UP" { ok = 1 } END { exit !ok }' && { back=yes; break; }
  sleep 0.2
done

answered() {  # PORT -> the replica's count of 200 answers
  curl -s "http://127.0.0.1:$1/metrics" | awk '/^edgefleet_requests_total/ && /code="200"/ {n += $NF} END {print n + 0}'
}
echo "machine: $(nproc) cores; $replicas replicas x 1 model copy x 1 engine thread; $(basename "$card" .json); wrk -c$connections for $seconds s through HAProxy $(haproxy -v | sed -n '1s/HAProxy version \([^ ]*\).*/\1/p'), retry-on $retry_on"
echo
awk -v s="$start" '{ t = $NF; sub(/ at [0-9.]+$/, ""); printf "- %s %.1f s into the run\n", $0, t - s }' "$tmp/events"
echo
echo "| requests | req/s | p50 ms | p99 ms | non-2xx answers | socket errors |"
echo "|---|---|---|---|---|---|"
echo "| $requests | $rps | $p50 | $p99 | $non2xx | $((errors - non2xx)) |"
echo
echo "| replica | HAProxy status | retries (wretr) | redispatches (wredis) | went down (chkdown) | answered 200 (its /metrics) |"
echo "|---|---|---|---|---|---|"
curl -s "http://127.0.0.1:$stats/stats;csv" >"$tmp/stats.csv"
for i in "${!ports[@]}"; do
  count=$(answered "${ports[$i]}")
  [[ $i == "$victim" ]] && count="$count (since the restart)"
  awk -F, -v s="replica$i" -v n="$count" '$2 == s { printf "| %s | %s | %s | %s | %s | %s |\n", s, $18, $16, $17, $23, n }' "$tmp/stats.csv"
done
awk -F, '$2 == "BACKEND" && $1 == "replicas" { printf "\nbackend: %s retries, %s redispatches, %s responses 5xx\n", $16, $17, $44 }' "$tmp/stats.csv"
echo "restarted replica back in rotation: $back"
