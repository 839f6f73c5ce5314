#!/usr/bin/python3
"""Python baseline for bench/compare_stability.sh: the same stability run written the way a
Python user would (Debian python3-pil, python3-opencv, python3-torch): each photo decoded once,
then per environment re-encoded with PIL (when it re-encodes), decoded (PIL, or cv2 for
decode:opencv), colour round-tripped through cv2's Y'CbCr (color:bt601,full), resized with
cv2 or torch.nn.functional.interpolate (shorter side, the environment's filter), centre-cropped,
and classified in batches of 32 by the same TorchScript model, or by OpenCV DNN on its ONNX
copy (infer:engine=opencv-dnn), under bf16 autocast (infer:precision=bf16), at the
environment's thread count (infer:threads=N). Environment lines use edgefleet's spec syntax;
a stage outside these forms is refused by name (the script cannot express it).
Prints one JSON object: evaluations per second (wall clock, best of ROUNDS).

Usage: python_stability.py CARD.json DATA_DIR LIMIT ENV_FILE [ROUNDS=2]
"""
import io
import json
import os
import sys
import time

import cv2
import numpy as np
import torch
from PIL import Image


CV2_FILTERS = {"nearest": cv2.INTER_NEAREST, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC,
               "area": cv2.INTER_AREA, "lanczos4": cv2.INTER_LANCZOS4, "linear_exact": cv2.INTER_LINEAR_EXACT}
PIL_FORMATS = {"jpeg": ("JPEG", 92), "png": ("PNG", None), "webp": ("WEBP", 75)}  # edgefleet's defaults


class Env:
    """One environment: how the photo becomes the model's input, and how it is inferred."""

    def __init__(self, spec):
        self.source_decoder = "pil"
        self.encoding = None
        self.bt601_round_trip = False
        self.library, self.method, self.antialias = "opencv", "linear", False
        self.precision, self.engine, self.threads = "fp32", "libtorch", 0
        stages = spec.split("|")
        for i, stage in enumerate(stages):
            kind, _, rest = stage.partition(":")
            fields = rest.split(",") if rest else []
            options = dict(f.split("=", 1) for f in fields if "=" in f)
            positional = [f for f in fields if "=" not in f]
            if kind == "decode":
                decoder = positional[0] if positional else "auto"
                if i == 0 and decoder == "opencv":
                    self.source_decoder = "cv2"
                elif decoder not in ("auto", "turbojpeg", "libpng", "libwebp") or options:
                    raise ValueError(f"not expressible in the script: {stage}")
            elif kind == "encode":
                fmt = positional[0]
                if fmt not in PIL_FORMATS or "lossless" in options and fmt != "webp":
                    raise ValueError(f"not expressible in the script: {stage}")
                name, quality = PIL_FORMATS[fmt]
                params = {}
                if options.get("lossless") == "1":
                    params["lossless"] = True
                elif quality is not None:
                    params["quality"] = int(options.get("quality", quality))
                self.encoding = (name, params)
            elif kind == "color":
                if positional != ["bt601", "full"] or options:
                    raise ValueError(f"not expressible in the script: {stage}")
                self.bt601_round_trip = True
            elif kind == "resize":
                self.library, self.method = positional[0], positional[1]
                self.antialias = options.get("antialias") == "1"
                if self.library not in ("opencv", "torch"):
                    raise ValueError(f"not expressible in the script: {stage}")
            elif kind == "crop":
                pass
            elif kind == "infer":
                for key, value in options.items():
                    if key == "precision" and value in ("fp32", "bf16"):
                        self.precision = value
                    elif key == "engine" and value in ("libtorch", "opencv-dnn"):
                        self.engine = value
                    elif key == "threads":
                        self.threads = int(value)
                    else:
                        raise ValueError(f"not expressible in the script: {stage}")
            else:
                raise ValueError(f"not expressible in the script: {stage}")


def to_input(rgb, shorter, crop, env):
    h, w = rgb.shape[:2]
    scale = shorter / min(h, w)
    size = (round(h * scale), round(w * scale))
    if env.library == "torch":
        chw = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().unsqueeze(0)
        mode = {"bilinear": "bilinear", "bicubic": "bicubic", "nearest": "nearest"}[env.method]
        kwargs = {} if mode == "nearest" else {"align_corners": False, "antialias": env.antialias}
        resized = torch.nn.functional.interpolate(chw, size=size, mode=mode, **kwargs)[0]
        resized = resized.round_().clamp_(0, 255)
        top, left = int(round((size[0] - crop) / 2.0)), int(round((size[1] - crop) / 2.0))
        return resized[:, top:top + crop, left:left + crop].div_(255.0).contiguous()
    resized = cv2.resize(rgb, (size[1], size[0]), interpolation=CV2_FILTERS[env.method])
    top, left = int(round((size[0] - crop) / 2.0)), int(round((size[1] - crop) / 2.0))
    patch = resized[top:top + crop, left:left + crop]
    return torch.from_numpy(np.ascontiguousarray(patch.transpose(2, 0, 1))).float().div_(255.0)


def pixels(env, photo, raw_bytes):
    if env.source_decoder == "cv2":
        image = cv2.cvtColor(cv2.imdecode(np.frombuffer(raw_bytes, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    else:
        image = photo
    if env.encoding is not None:
        buffer = io.BytesIO()
        Image.fromarray(np.asarray(image)).save(buffer, format=env.encoding[0], **env.encoding[1])
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    rgb = np.asarray(image)
    if env.bt601_round_trip:
        rgb = cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb), cv2.COLOR_YCrCb2RGB)
    return rgb


class Inference:
    def __init__(self, model, onnx_path, threads):
        self.model, self.onnx_path, self.threads, self.net = model, onnx_path, threads, None
        self.one_at_a_time = False

    def __call__(self, env, batch):
        torch.set_num_threads(env.threads or self.threads)
        cv2.setNumThreads(env.threads or self.threads)
        if env.engine == "opencv-dnn":
            if self.net is None:
                self.net = cv2.dnn.readNetFromONNX(self.onnx_path)
            # A fixed-batch export runs one input at a time (as edgefleet's OpenCV DNN engine).
            if not self.one_at_a_time:
                try:
                    self.net.setInput(torch.stack(batch).numpy())
                    return int(self.net.forward().argmax(1).size)
                except cv2.error:
                    self.one_at_a_time = True
            answers = 0
            for one in batch:
                self.net.setInput(one.unsqueeze(0).numpy())
                answers += int(self.net.forward().argmax(1).size)
            return answers
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=env.precision == "bf16"):
            return self.model(torch.stack(batch)).argmax(1).numel()


def run(infer, files, envs, shorter, crop):
    batches = {name: [] for name, _ in envs}
    answers = 0
    for path in files:
        raw_bytes = open(path, "rb").read()
        photo = Image.open(io.BytesIO(raw_bytes)).convert("RGB")
        for name, env in envs:
            batches[name].append(to_input(pixels(env, photo, raw_bytes), shorter, crop, env))
            if len(batches[name]) == 32:
                answers += infer(env, batches[name])
                batches[name] = []
    for name, env in envs:
        if batches[name]:
            answers += infer(env, batches[name])
    return answers


def main():
    card_path, data, limit, env_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    threads = os.cpu_count()  # as many inference threads as edgefleet uses
    card = json.load(open(card_path))
    stem = os.path.join(os.path.dirname(card_path), card["file"])
    model = torch.jit.load(stem).eval()
    shorter = card["input"].get("resize_size", 256)
    crop = card["input"]["height"]
    files = sorted(os.path.join(root, f) for root, _, names in os.walk(data) for f in names
                   if f.lower().endswith((".jpg", ".jpeg")))[:limit]
    envs = []
    for line in open(env_file):
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, spec = line.partition("=")
            envs.append((name, Env(spec)))
    infer = Inference(model, os.path.splitext(stem)[0] + ".onnx", threads)
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        answers = run(infer, files, envs, shorter, crop)
        best = max(best, answers / (time.perf_counter() - start))
    print(json.dumps({"images": len(files), "environments": len(envs), "evals_per_s": best,
                      "torch_threads": threads}))


if __name__ == "__main__":
    main()
