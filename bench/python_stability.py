#!/usr/bin/python3
"""Python baseline for bench/compare_stability.sh: the same stability run written the way a
Python user would (Debian python3-pil, python3-opencv, python3-torch): each photo decoded once,
then per environment re-encoded with PIL (when it re-encodes), decoded, resized with cv2 or
torch.nn.functional.interpolate (shorter side, the environment's filter), centre-cropped, and
classified in batches of 32 by the same TorchScript model. Understands the stage forms used in
bench/stability_envs*.txt.
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


def parse_env(spec):
    """(re-encoding or None, resize library, filter) of an environment line."""
    encoding, library, method = None, "opencv", "linear"
    for stage in spec.split("|"):
        kind, _, opts = stage.partition(":")
        fields = opts.split(",")
        options = dict(f.split("=") for f in fields[1:] if "=" in f)
        if kind == "resize":
            library, method = fields[0], fields[1]
        if kind != "encode":
            continue
        if fields[0] == "jpeg":
            encoding = ("JPEG", {"quality": int(options["quality"])})
        elif fields[0] == "png":
            encoding = ("PNG", {})
        elif fields[0] == "webp":
            if options.get("lossless") == "1":
                encoding = ("WEBP", {"lossless": True})
            else:
                encoding = ("WEBP", {"quality": int(options.get("quality", 75))})
    return encoding, library, method


def to_input(rgb, shorter, crop, library, method):
    h, w = rgb.shape[:2]
    scale = shorter / min(h, w)
    size = (round(h * scale), round(w * scale))
    if library == "torch":
        chw = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().unsqueeze(0)
        mode = {"bilinear": "bilinear", "bicubic": "bicubic", "nearest": "nearest"}[method]
        kwargs = {} if mode == "nearest" else {"align_corners": False}
        resized = torch.nn.functional.interpolate(chw, size=size, mode=mode, **kwargs)[0]
        resized = resized.round_().clamp_(0, 255)
        top, left = int(round((size[0] - crop) / 2.0)), int(round((size[1] - crop) / 2.0))
        return resized[:, top:top + crop, left:left + crop].div_(255.0).contiguous()
    resized = cv2.resize(rgb, (size[1], size[0]), interpolation=CV2_FILTERS[method])
    top, left = int(round((size[0] - crop) / 2.0)), int(round((size[1] - crop) / 2.0))
    patch = resized[top:top + crop, left:left + crop]
    return torch.from_numpy(np.ascontiguousarray(patch.transpose(2, 0, 1))).float().div_(255.0)


def run(model, files, envs, shorter, crop):
    batches = {name: [] for name, _ in envs}
    answers = 0
    for path in files:
        photo = Image.open(path).convert("RGB")
        for name, (encoding, library, method) in envs:
            if encoding is None:
                image = photo
            else:
                buffer = io.BytesIO()
                photo.save(buffer, format=encoding[0], **encoding[1])
                image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
            batches[name].append(to_input(np.asarray(image), shorter, crop, library, method))
            if len(batches[name]) == 32:
                with torch.inference_mode():
                    answers += model(torch.stack(batches[name])).argmax(1).numel()
                batches[name] = []
    for name, batch in batches.items():
        if batch:
            with torch.inference_mode():
                answers += model(torch.stack(batch)).argmax(1).numel()
    return answers


def main():
    card_path, data, limit, env_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    torch.set_num_threads(os.cpu_count())  # as many inference threads as edgefleet uses
    card = json.load(open(card_path))
    model = torch.jit.load(os.path.join(os.path.dirname(card_path), card["file"])).eval()
    shorter = card["input"].get("resize_size", 256)
    crop = card["input"]["height"]
    files = sorted(os.path.join(root, f) for root, _, names in os.walk(data) for f in names
                   if f.lower().endswith((".jpg", ".jpeg")))[:limit]
    envs = []
    for line in open(env_file):
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, spec = line.partition("=")
            envs.append((name, parse_env(spec)))
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        answers = run(model, files, envs, shorter, crop)
        best = max(best, answers / (time.perf_counter() - start))
    print(json.dumps({"images": len(files), "environments": len(envs), "evals_per_s": best,
                      "torch_threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
