#!/usr/bin/env python3
"""KServe v2 over gRPC, checked with an independent client: Python grpcio with stubs compiled
from the server's .proto by grpc_tools. Health, metadata and inference answer as over HTTP
(the same logits for the same input and variant), every error maps to its gRPC code, and the
token guards everything but health.
Usage: grpc_client_test.py EDGEFLEET_BINARY SOURCE_DIR   (exit 77 = skipped: no grpcio/grpc_tools)
"""
import json
import os
import pathlib
import struct
import subprocess
import sys
import tempfile
import urllib.request

try:
    import grpc
    from grpc_tools import protoc
except ImportError:
    print("SKIP: python3-grpcio or python3-grpc-tools is not installed")
    sys.exit(77)

TOKEN = "s3cret"
AUTH = (("authorization", "Bearer " + TOKEN),)
failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)


def code_of(call):
    try:
        call()
    except grpc.RpcError as e:
        return e.code()
    return grpc.StatusCode.OK


def main(binary, root):
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="edgefleet-grpc-"))
    proto_dir = root / "src" / "serve" / "proto"
    if protoc.main(["protoc", f"-I{proto_dir}", f"--python_out={tmp}", f"--grpc_python_out={tmp}",
                    str(proto_dir / "grpc_predict_v2.proto")]) != 0:
        print("grpc_tools could not compile the proto")
        return 1
    sys.path.insert(0, str(tmp))
    import grpc_predict_v2_pb2 as pb
    import grpc_predict_v2_pb2_grpc as pb_grpc

    repository = tmp / "repository"
    models = root / "models" / "fashion-mnist"
    subprocess.run([binary, "repository", "add", str(repository), "--task", "fashion-mnist",
                    str(models / "cnn_tiny.json"), str(models / "cnn_plain.json")], check=True, capture_output=True)
    server = subprocess.Popen([binary, "serve", "--repository", str(repository), "--port", "0", "--grpc-port", "0",
                               "--warmup", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "EDGEFLEET_TOKEN": TOKEN})
    grpc_address = http_url = None
    for line in server.stdout:
        if line.startswith("listening for gRPC on "):
            grpc_address = line.split()[-1]
        if line.startswith("listening on "):
            http_url = line.split()[-1]
            break
    if not grpc_address or not http_url:
        print("the server did not print both addresses:", server.stderr.read())
        return 1
    try:
        stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(grpc_address))
        run_checks(stub, pb, http_url)
    finally:
        server.terminate()
        exit_code = server.wait(timeout=60)
    check(exit_code == 0, f"the server stops cleanly on SIGTERM (exit {exit_code})")
    return 1 if failures else 0


def pixels(seed):
    return [((i * 37 + seed * 11) % 256) / 255.0 for i in range(28 * 28)]


def raw_fp32(values):
    return struct.pack(f"<{len(values)}f", *values)


def http_logits(url, model, version, values):
    body = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 1, 28, 28], "data": values}]})
    request = urllib.request.Request(f"{url}/v2/models/{model}/versions/{version}/infer", data=body.encode(),
                                     headers={"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["outputs"][0]["data"]


def infer_request(pb, model="fashion-mnist", version="", values=None, shape=(1, 1, 28, 28), raw=True, **parameters):
    values = pixels(1) if values is None else values
    request = pb.ModelInferRequest(model_name=model, model_version=version, id="r1")
    tensor = request.inputs.add(name="input", datatype="FP32", shape=list(shape))
    if raw:
        request.raw_input_contents.append(raw_fp32(values))
    else:
        tensor.contents.fp32_contents.extend(values)
    for key, value in parameters.items():
        if isinstance(value, bool):
            request.parameters[key].bool_param = value
        elif isinstance(value, int):
            request.parameters[key].int64_param = value
        elif isinstance(value, float):
            request.parameters[key].double_param = value
        else:
            request.parameters[key].string_param = value
    return request


def floats_of(response, index=0):
    data = response.raw_output_contents[index]
    return list(struct.unpack(f"<{len(data) // 4}f", data))


def run_checks(stub, pb, http_url):
    # Health: no token needed, as /v2/health/* over HTTP.
    check(stub.ServerLive(pb.ServerLiveRequest()).live, "ServerLive answers without a token")
    check(stub.ServerReady(pb.ServerReadyRequest()).ready, "ServerReady is true once the variants are warm")
    check(code_of(lambda: stub.ServerMetadata(pb.ServerMetadataRequest())) == grpc.StatusCode.UNAUTHENTICATED,
          "ServerMetadata without the token is UNAUTHENTICATED")
    check(code_of(lambda: stub.ModelInfer(infer_request(pb), metadata=(("authorization", "Bearer wrong"),)))
          == grpc.StatusCode.UNAUTHENTICATED, "ModelInfer with a wrong token is UNAUTHENTICATED")
    meta = stub.ServerMetadata(pb.ServerMetadataRequest(), metadata=AUTH)
    check(meta.name == "edgefleet", f"ServerMetadata names the server ({meta.name})")
    check(stub.ModelReady(pb.ModelReadyRequest(name="fashion-mnist"), metadata=AUTH).ready, "the task is ready")
    check(not stub.ModelReady(pb.ModelReadyRequest(name="nope"), metadata=AUTH).ready, "an unknown model is not ready")

    model = stub.ModelMetadata(pb.ModelMetadataRequest(name="fashion-mnist"), metadata=AUTH)
    check(sorted(model.versions) == ["cnn_plain", "cnn_tiny"], f"ModelMetadata lists the variants ({list(model.versions)})")
    check(any(list(t.shape) == [-1, 1, 28, 28] and t.datatype == "FP32" for t in model.inputs),
          "ModelMetadata gives the FP32 input's shape with a variable batch")
    check(list(model.outputs[0].shape) == [-1, 10], f"ModelMetadata gives the logits' shape ({list(model.outputs[0].shape)})")
    check(code_of(lambda: stub.ModelMetadata(pb.ModelMetadataRequest(name="nope"), metadata=AUTH))
          == grpc.StatusCode.NOT_FOUND, "ModelMetadata of an unknown model is NOT_FOUND")

    # Inference: the same logits as HTTP for the same input on the same variant, raw or typed.
    for variant in ("cnn_tiny", "cnn_plain"):
        values = pixels(3)
        over_http = http_logits(http_url, "fashion-mnist", variant, values)
        raw = stub.ModelInfer(infer_request(pb, version=variant, values=values), metadata=AUTH)
        typed = stub.ModelInfer(infer_request(pb, version=variant, values=values, raw=False), metadata=AUTH)
        for name, response in (("raw_input_contents", raw), ("fp32_contents", typed)):
            got = floats_of(response)
            check(len(got) == 10 and max(abs(a - b) for a, b in zip(got, over_http)) < 1e-5,
                  f"{variant} via {name}: the logits HTTP gives")
        check(raw.model_version == variant and raw.id == "r1" and raw.parameters["variant"].string_param == variant,
              f"{variant}: the response names the variant and echoes the id")
        check(list(raw.outputs[0].shape) == [1, 10] and raw.outputs[0].datatype == "FP32", f"{variant}: logits shape [1, 10]")

    # Selection per request: the parameters arrive typed as the client set them.
    picked = stub.ModelInfer(infer_request(pb, sla_ms=10000.0, transfer_ms=1), metadata=AUTH)
    check(picked.parameters["variant"].string_param in ("cnn_tiny", "cnn_plain")
          and picked.parameters["sla_ms"].double_param == 10000.0,
          f"sla_ms (double) and transfer_ms (int64) reach the selection ({picked.parameters['variant'].string_param})")
    batch = stub.ModelInfer(infer_request(pb, values=pixels(1) + pixels(2), shape=(2, 1, 28, 28)), metadata=AUTH)
    check(list(batch.outputs[0].shape) == [2, 10] and len(floats_of(batch)) == 20, "a batch of two gives two rows")

    classified = infer_request(pb, version="cnn_tiny")
    out = classified.outputs.add(name="logits")
    out.parameters["classification"].int64_param = 3
    response = stub.ModelInfer(classified, metadata=AUTH)
    data = response.raw_output_contents[0]
    labels, at = [], 0
    while at < len(data):
        (length,) = struct.unpack_from("<I", data, at)
        labels.append(data[at + 4:at + 4 + length].decode())
        at += 4 + length
    check(response.outputs[0].datatype == "BYTES" and len(labels) == 3 and all(l.count(":") >= 1 for l in labels),
          f"classification=3 gives three 'score:index' strings ({labels})")

    # Errors: the codes the HTTP statuses map to.
    bad = {
        "a shape that does not match the data": infer_request(pb, shape=(1, 1, 28, 27)),
        "a shape no variant takes": infer_request(pb, values=[0.5] * 100, shape=(1, 1, 10, 10)),
        "an unknown policy": infer_request(pb, policy="fastest-please"),
        "a negative sla_ms": infer_request(pb, sla_ms=-1.0),
    }
    unknown_type = infer_request(pb)
    unknown_type.inputs[0].datatype = "FP8"
    bad["an unknown datatype"] = unknown_type
    wrong_field = infer_request(pb, raw=False)
    wrong_field.inputs[0].contents.ClearField("fp32_contents")
    wrong_field.inputs[0].contents.int_contents.extend([1] * 784)
    bad["contents in another datatype's field"] = wrong_field
    both = infer_request(pb)
    both.inputs[0].contents.fp32_contents.extend(pixels(1))
    bad["raw and typed contents together"] = both
    extra_raw = infer_request(pb)
    extra_raw.raw_input_contents.append(b"\0\0\0\0")
    bad["more raw contents than inputs"] = extra_raw
    for what, request in bad.items():
        code = code_of(lambda: stub.ModelInfer(request, metadata=AUTH))
        check(code == grpc.StatusCode.INVALID_ARGUMENT, f"{what} is INVALID_ARGUMENT ({code})")
    for what, request in {"an unknown model": infer_request(pb, model="nope"),
                          "an unknown version": infer_request(pb, version="nope")}.items():
        code = code_of(lambda: stub.ModelInfer(request, metadata=AUTH))
        check(code == grpc.StatusCode.NOT_FOUND, f"{what} is NOT_FOUND ({code})")

    check(stub.ServerLive(pb.ServerLiveRequest()).live, "the server is still live after the bad requests")
    with urllib.request.urlopen(urllib.request.Request(f"{http_url}/metrics",
                                                       headers={"Authorization": "Bearer " + TOKEN}), timeout=30) as r:
        metrics = r.read().decode()
    counted = sum(float(line.split()[-1]) for line in metrics.splitlines()
                  if line.startswith("edgefleet_requests_total") and 'code="200"' in line)
    check(counted == 2 + 7, f"/metrics counts the 7 gRPC inferences with the 2 HTTP ones ({counted:.0f} answered)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], pathlib.Path(sys.argv[2])))
