"""Python baselines for bench/compare_imaging.sh: the same decode and resize operations with
Debian's python3-pil, python3-opencv and python3-torch, one thread, megapixels per second of
process CPU time (best of 5 passes), as bench_imaging measures.

  python_imaging.py prepare SOURCE_DIR OUT_DIR N   # N JPEGs copied + PNG and WebP versions
  python_imaging.py run OUT_DIR                    # JSON {name: {"pil": MP/s, "cv2": MP/s}}
"""
import io, json, os, shutil, sys, time

import cv2
import torch
import numpy as np
from PIL import Image

cv2.setNumThreads(1)
torch.set_num_threads(1)


def prepare(source, out, n):
    os.makedirs(out, exist_ok=True)
    jpegs = sorted(os.path.join(r, f) for r, _, fs in os.walk(source) for f in fs if f.lower().endswith((".jpg", ".jpeg")))
    for i, path in enumerate(jpegs[:n]):
        shutil.copy(path, os.path.join(out, f"{i:04d}.jpg"))
        im = Image.open(path).convert("RGB")
        im.save(os.path.join(out, f"{i:04d}.png"))
        im.save(os.path.join(out, f"{i:04d}.webp"), quality=80)


def best_rate(fn, items, pixels):
    best = 0.0
    for _ in range(5):
        start = time.process_time()
        for item in items:
            fn(item)
        best = max(best, pixels / (time.process_time() - start) / 1e6)
    return best


def run(folder):
    files = {}
    for name in sorted(os.listdir(folder)):
        ext = os.path.splitext(name)[1]
        with open(os.path.join(folder, name), "rb") as f:
            files.setdefault(ext, []).append(f.read())
    rgb = [np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in files[".jpg"]]
    pixels = {ext: sum(Image.open(io.BytesIO(b)).size[0] * Image.open(io.BytesIO(b)).size[1] for b in bs) for ext, bs in files.items()}
    src_pixels = sum(a.shape[0] * a.shape[1] for a in rgb)

    def pil_decode(b):
        Image.open(io.BytesIO(b)).convert("RGB").load()

    def cv2_decode(b):
        cv2.cvtColor(cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

    def target(a):
        h, w = a.shape[:2]
        return (256, 256 * h // w) if w <= h else (256 * w // h, 256)

    pil_images = [Image.fromarray(a) for a in rgb]
    out = {}
    for fmt, ext in (("jpeg", ".jpg"), ("png", ".png"), ("webp", ".webp")):
        out[f"decode/{fmt}"] = {"pil": best_rate(pil_decode, files[ext], pixels[ext]),
                                "cv2": best_rate(cv2_decode, files[ext], pixels[ext])}
    for name, flag in (("linear", cv2.INTER_LINEAR), ("area", cv2.INTER_AREA), ("cubic", cv2.INTER_CUBIC),
                       ("lanczos4", cv2.INTER_LANCZOS4)):
        out[f"resize/{name}"] = {"cv2": best_rate(lambda a: cv2.resize(a, target(a), interpolation=flag), rgb, src_pixels)}
    def torch_resize(mode):
        def run(a):
            # What edgefleet's resize:torch does: NHWC bytes -> float NCHW -> interpolate -> bytes.
            t = torch.from_numpy(a).unsqueeze(0).permute(0, 3, 1, 2).float()
            w, h = target(a)
            out = torch.nn.functional.interpolate(t, size=(h, w), mode=mode, align_corners=False, antialias=True)
            out.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
        return run

    for name, mode in (("bilinear-antialias", "bilinear"), ("bicubic-antialias", "bicubic")):
        out[f"resize/{name}"] = {"torch": best_rate(torch_resize(mode), rgb, src_pixels)}
    for name, flag in (("bilinear-antialias", Image.BILINEAR), ("bicubic-antialias", Image.BICUBIC),
                       ("lanczos", Image.LANCZOS)):
        out.setdefault(f"resize/{name}", {})["pil"] = (best_rate(lambda im: im.resize(target(np.asarray(im)), flag), pil_images, src_pixels))
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        run(sys.argv[2])
