#!/usr/bin/python3
"""The serving benchmark's baseline: a KServe v2 JSON infer endpoint in Python (the standard
library's threading HTTP server + Debian's python3-torch) serving one TorchScript model.
Only POST /v2/models/NAME/infer with one FP32 tensor; prints "listening on http://HOST:PORT".
Usage: bench/python_kserve_server.py MODEL.pt [PORT] [TORCH_THREADS]"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch

model = torch.jit.load(sys.argv[1]).eval()
port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects
    disable_nagle_algorithm = True  # as edgefleet serve does: no 40 ms delayed-ACK stalls

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            request = json.loads(body)
            tensor = request["inputs"][0]
            x = torch.tensor(tensor["data"], dtype=torch.float32).reshape(tensor["shape"])
            with torch.inference_mode():
                y = model(x)
            answer = {"model_name": self.path.split("/")[3],
                      "outputs": [{"name": "logits", "datatype": "FP32", "shape": list(y.shape),
                                   "data": y.flatten().tolist()}]}
            self.reply(200, json.dumps(answer).encode())
        except Exception as e:  # noqa: BLE001 - a baseline; any failure is a 400
            self.reply(400, json.dumps({"error": str(e)}).encode())

    def reply(self, status, payload):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
server.daemon_threads = True
print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
