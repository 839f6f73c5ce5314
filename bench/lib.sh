# Sourced by the benchmarks that put load on a server.

# A free TCP port on loopback.
free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# PREFIX SHAPE_JSON: one KServe v2 binary-tensor request of an FP32 input of that shape (values
# in [0, 1]) in PREFIX.bin, and its JSON header's length (Inference-Header-Content-Length) in
# PREFIX.json_length.
write_binary_request() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import json, math, struct, sys
prefix, shape = sys.argv[1], json.loads(sys.argv[2])
n = math.prod(shape)
header = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": shape,
                                 "parameters": {"binary_data_size": 4 * n}}]}).encode()
open(prefix + ".bin", "wb").write(header + struct.pack(f"<{n}f", *(((i * 37) % 256) / 255.0 for i in range(n))))
open(prefix + ".json_length", "w").write(str(len(header)))
PY
}

# FILE: wrk's script posting $BODY with Inference-Header-Content-Length $JSON_LENGTH; at the end
# it prints "RESULT req/s p50_ms p99_ms errors requests non2xx" (errors: every failed request,
# non-2xx answers included).
write_wrk_reporter() {
  cat >"$1" <<'LUA'
local f = io.open(os.getenv("BODY"), "rb"); local body = f:read("*a"); f:close()
wrk.method = "POST"; wrk.body = body
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Inference-Header-Content-Length"] = os.getenv("JSON_LENGTH")
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %.1f %.3f %.3f %d %d %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.status + e.connect + e.read + e.write + e.timeout, summary.requests, e.status))
end
LUA
}
