#!/usr/bin/python3
"""Python baseline for bench/compare_python.sh: inference throughput of TorchScript models
run the way a Python user runs them (Debian python3-torch, torch.jit.load, inference_mode),
and also after torch.jit.freeze + optimize_for_inference. Prints one JSON object.

Usage: python_zoo_throughput.py --threads N CARD.json...
"""
import argparse
import json
import os
import time

import torch


def throughput(model, shape, batch, min_seconds=1.0):
    x = torch.full((batch,) + shape, 0.5)
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        runs, start = 0, time.perf_counter()
        while True:
            model(x)
            runs += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds and runs >= 5:
                return runs * batch / elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("cards", nargs="+")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = {}
    for card_path in args.cards:
        card = json.load(open(card_path))
        path = os.path.join(os.path.dirname(card_path), card["file"])
        shape = (1 if card["input"]["color"] == "gray" else 3, card["input"]["height"], card["input"]["width"])
        plain = torch.jit.load(path).eval()
        optimized = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.load(path).eval()))
        for batch in (1, 32):
            out[f"{card['name']}/batch:{batch}"] = {
                "python": throughput(plain, shape, batch),
                "python_optimized": throughput(optimized, shape, batch),
            }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
