#!/usr/bin/env bash
# gRPC against HTTP, same server, same run, same load generator: h2load (nghttp2) sends N
# inferences of one FP32 input to `edgefleet serve --port 0 --grpc-port 0` as
#   - HTTP/1.1 JSON (the default KServe v2 body),
#   - HTTP/1.1 binary (the binary tensor extension),
#   - gRPC ModelInfer with raw_input_contents (HTTP/2, one stream per connection at a time),
# at each concurrency. h2load cannot read gRPC status trailers, so every point is checked on
# the server: its /metrics must count exactly N more answered (200) requests.
# Prints Markdown.
# Usage: bench/grpc_vs_http.sh [REQUESTS] [CONCURRENCY ...]
#   default: 1000 requests, concurrency 1 and 16; models: the smallest zoo model and, when
#   present, ../shared/imagenet/models/mobilenet_v2_1.0 (a 602 KB input)
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-1000}
shift || true
concurrency=("$@")
[[ ${#concurrency[@]} -gt 0 ]] || concurrency=(1 16)
edgefleet=${EDGEFLEET_BUILD_DIR:-build}/edgefleet
command -v h2load >/dev/null || { echo "needs h2load (Debian nghttp2-client; scripts/install-deps.sh installs it)" >&2; exit 1; }
/usr/bin/python3 -c "import grpc_tools" 2>/dev/null || { echo "needs python3-grpc-tools" >&2; exit 1; }
tmp=$(mktemp -d)
pid=
trap '[[ -n $pid ]] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
source scripts/listening.sh

cards=(models/fashion-mnist/cnn_tiny.json)
[[ -f ../shared/imagenet/models/mobilenet_v2_1.0.json ]] && cards+=(../shared/imagenet/models/mobilenet_v2_1.0.json)

/usr/bin/python3 -m grpc_tools.protoc -Isrc/serve/proto --python_out="$tmp" src/serve/proto/grpc_predict_v2.proto
# Bodies for one model: MODEL C H W -> $tmp/MODEL.{json,bin,grpc} and $tmp/MODEL.json_length
write_bodies() {
  PYTHONPATH=$tmp /usr/bin/python3 - "$tmp" "$@" <<'PY'
import json, struct, sys
import grpc_predict_v2_pb2 as pb
out, model, c, h, w = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
n = c * h * w
values = [((i * 37) % 256) / 255.0 for i in range(n)]
tensor = {"name": "input", "datatype": "FP32", "shape": [1, c, h, w]}
open(f"{out}/{model}.json", "w").write(json.dumps({"inputs": [dict(tensor, data=values)]}))
header = json.dumps({"inputs": [dict(tensor, parameters={"binary_data_size": 4 * n})]}).encode()
open(f"{out}/{model}.bin", "wb").write(header + struct.pack(f"<{n}f", *values))
open(f"{out}/{model}.json_length", "w").write(str(len(header)))
request = pb.ModelInferRequest(model_name=model)
request.inputs.add(name="input", datatype="FP32", shape=[1, c, h, w])
request.raw_input_contents.append(struct.pack(f"<{n}f", *values))
message = request.SerializeToString()
open(f"{out}/{model}.grpc", "wb").write(b"\0" + struct.pack(">I", len(message)) + message)  # gRPC length-prefixed frame
PY
}

answered() {  # the server's count of 200 answers
  curl -s "$http_url/metrics" | awk '/^edgefleet_requests_total/ && /code="200"/ {n += $NF} END {print n + 0}'
}
# PROTOCOL MODEL CONNECTIONS -> "req/s mean_ms" (fails when the server did not answer every one)
load() {
  local protocol=$1 model=$2 c=$3 before after output
  before=$(answered)
  case $protocol in
    json) output=$(h2load --h1 -n "$requests" -c "$c" -d "$tmp/$model.json" -H 'content-type: application/json' \
                     "$http_url/v2/models/$model/infer") ;;
    binary) output=$(h2load --h1 -n "$requests" -c "$c" -d "$tmp/$model.bin" -H 'content-type: application/octet-stream' \
                       -H "inference-header-content-length: $(cat "$tmp/$model.json_length")" "$http_url/v2/models/$model/infer") ;;
    grpc) output=$(h2load -n "$requests" -c "$c" -m 1 -d "$tmp/$model.grpc" -H 'content-type: application/grpc' -H 'te: trailers' \
                     "http://$grpc_address/inference.GRPCInferenceService/ModelInfer") ;;
  esac
  after=$(answered)
  if (( after - before != requests )); then
    echo "$protocol $model c=$c: the server answered $((after - before)) of $requests" >&2
    echo "$output" >&2
    exit 1
  fi
  echo "$output" | awk '/^finished in/ {rps = $4} /^time for request:/ {mean = $6} END {
    unit = mean; sub(/[0-9.]+/, "", unit); v = mean + 0; if (unit == "us") v /= 1000; if (unit == "s") v *= 1000
    printf "%s %.2f\n", rps, v}'
}

echo "machine: $(nproc) cores; server: 2 copies x 1 engine thread, no batching; h2load on the same machine; $requests requests per point"
echo
echo "| model | input | concurrency | HTTP JSON req/s (mean ms) | HTTP binary req/s (mean ms) | gRPC req/s (mean ms) | gRPC / JSON | gRPC / binary |"
echo "|---|---|---|---|---|---|---|---|"
for card in "${cards[@]}"; do
  model=$(basename "$card" .json)
  rm -rf "$tmp/repo"
  "$edgefleet" repository add "$tmp/repo" --task bench --variant "$model" "$card" >/dev/null
  start_listening "$tmp/serve" "$edgefleet" serve --repository "$tmp/repo" --port 0 --grpc-port 0 --instances 2 \
    --engine-threads 1 --max-queue 256 --warmup 20
  pid=$listening_pid
  http_url=$listening_url
  grpc_address=$(sed -n 's/^listening for gRPC on //p' "$tmp/serve.out")
  read -r ch h w < <(curl -s "$http_url/v2/models/$model" | jq -r '.inputs[0].shape[1:] | map(tostring) | join(" ")')
  write_bodies "$model" "$ch" "$h" "$w"
  for c in "${concurrency[@]}"; do
    read -r json_rps json_ms < <(load json "$model" "$c")
    read -r bin_rps bin_ms < <(load binary "$model" "$c")
    read -r grpc_rps grpc_ms < <(load grpc "$model" "$c")
    awk -v m="$model" -v shape="${ch}x${h}x${w}" -v c="$c" -v j="$json_rps" -v jm="$json_ms" -v b="$bin_rps" -v bm="$bin_ms" \
        -v g="$grpc_rps" -v gm="$grpc_ms" 'BEGIN {
      printf "| %s | 1x%s FP32 | %d | %.0f (%.2f) | %.0f (%.2f) | %.0f (%.2f) | %.2fx | %.2fx |\n", m, shape, c, j, jm, b, bm, g, gm, g / j, g / b }'
  done
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
done
