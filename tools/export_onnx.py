#!/usr/bin/python3
"""Maintainer tool: writes an ONNX copy of a TorchScript zoo model, with its card, so that
OpenCV DNN (edgefleet's second engine) can run the same network.

Uses Debian's python3-torch exporter: edgefleet itself never runs Python; the .onnx files it
produces are committed beside the .pt files. Usage:
    /usr/bin/python3 tools/export_onnx.py models/fashion-mnist/cnn_tiny.json
"""
import hashlib
import json
import os
import sys

import torch


def main(card_path):
    card = json.load(open(card_path))
    folder = os.path.dirname(os.path.abspath(card_path))
    model = torch.jit.load(os.path.join(folder, card["file"]))
    model.eval()
    shape = (1, 3 if card["input"]["color"] != "gray" else 1, card["input"]["height"], card["input"]["width"])
    stem = os.path.splitext(card["file"])[0]
    onnx_file = stem + ".onnx"
    onnx_path = os.path.join(folder, onnx_file)
    torch.onnx.export(model, torch.rand(shape), onnx_path, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}}, opset_version=10)
    onnx_card = dict(card)
    onnx_card["name"] = card["name"] + "-onnx"
    onnx_card["file"] = onnx_file
    onnx_card["format"] = "onnx"
    # Measured, not inherited: run `edgefleet eval --model <file>.onnx --record` afterwards.
    onnx_card.pop("accuracy", None)
    onnx_card["sha256"] = hashlib.sha256(open(onnx_path, "rb").read()).hexdigest()
    onnx_card["provenance"] = {"exported_from": card["file"], "source_sha256": card.get("sha256"),
                               "exporter": "torch.onnx.export %s, opset 10 (tools/export_onnx.py)" % torch.__version__}
    with open(os.path.join(folder, stem + ".onnx.json"), "w") as out:
        json.dump(onnx_card, out, indent=1)
        out.write("\n")
    print(onnx_path)


if __name__ == "__main__":
    for path in sys.argv[1:]:
        main(path)
