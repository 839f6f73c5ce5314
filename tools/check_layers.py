#!/usr/bin/env python3
"""Checks that every source file includes only headers of its own layer or of layers below.

The layers, their folders and the public headers each owns are written down in
docs/architecture.md; this table is the same, and the test command runs this check (ctest
`layers`). A file may include:
  - public headers (edgefleet/X.h) of its layer or of a lower one;
  - private headers (src/FOLDER/x.h) of its own folder, and those a lower layer exports to
    the layers above (EXPORTED below).
Layers of one rank are siblings: they may not include each other.
Exit status 1 and one line per violation otherwise.
"""
import pathlib
import re
import sys

# layer -> (rank, source folders)
LAYERS = {
    "core": (0, ["core"]),
    "imaging": (1, ["imaging"]),
    "model": (2, ["model"]),
    "fleet": (3, ["fleet"]),
    "zoo": (4, ["zoo"]),
    "stability": (5, ["stability"]),
    "harden": (6, ["harden"]),
    "serve": (6, ["serve"]),
    "port": (6, ["port"]),
    "peers": (7, ["peers"]),
    "cli": (8, ["cli"]),
}

# public header -> layer
PUBLIC = {
    "core": ["status", "image", "labels", "sha256", "plot"],
    "imaging": ["decode", "encode", "resize", "color_conversion", "camera", "screen_capture", "raw_file", "pipeline", "pipeline_comparison",
                "input_contract"],
    "model": ["dataset", "model_card", "classifier", "inference_setting", "evaluation", "latency", "preprocess", "onnx_export", "activation_divergence"],
    "fleet": ["device_profile"],
    "zoo": ["architecture", "arch_cost", "zoo", "finetune"],
    "stability": ["instability", "results_store", "stability_run", "stability_axes", "stability_experiment", "stability_summary",
                  "stability_gate", "shard", "stability_explain",
                  "stability_report"],
    "harden": ["hardening", "distortion"],
    "serve": ["selection", "simulator", "latency_tracker", "profiler", "kserve", "model_repository",
              "inference_server", "inference_client"],
    "port": ["port", "goal_tree", "port_server", "multi_branch", "adaptive_runtime", "graph_pruning", "latency_predictor"],
    "peers": ["peer_tuning", "peer_coordinator", "lsh_index"],
}

# Private headers a layer offers to the layers above it (its internal API inside the library).
EXPORTED = {
    "core": "*",  # the library's shared internals: files, time, threads, JSON fields, HTTP
    "imaging": ["opencv_image.h"],
    "model": ["torchscript_cost.h", "torchscript_graph.h"],
    "zoo": ["module_builder.h", "torchscript_import.h", "training.h"],
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of_folder(folder):
    for name, (_, folders) in LAYERS.items():
        if folder in folders:
            return name
    return None


def main(root):
    header_layer = {h: layer for layer, headers in PUBLIC.items() for h in headers}
    problems = []
    include_dir = root / "include" / "edgefleet"
    for header in sorted(include_dir.glob("*.h")):
        if header.stem not in header_layer:
            problems.append(f"{header.relative_to(root)}: public header not assigned to a layer in tools/check_layers.py")
    sources = sorted(p for p in (root / "src").glob("*/*") if p.suffix in (".cpp", ".h"))
    sources += sorted(include_dir.glob("*.h"))
    for path in sources:
        if path.parent == include_dir:
            layer = header_layer.get(path.stem)
            folder = None
        else:
            folder = path.parent.name
            layer = layer_of_folder(folder)
            if layer is None:
                problems.append(f"{path.relative_to(root)}: folder src/{folder} is not a layer in tools/check_layers.py")
                continue
        if layer is None:
            continue
        rank = LAYERS[layer][0]
        for included in INCLUDE.findall(path.read_text(errors="replace")):
            parts = included.split("/")
            if len(parts) != 2:
                continue  # a system or third-party header in quotes
            where, name = parts
            if where == "edgefleet":
                target = header_layer.get(pathlib.Path(name).stem)
                if target is None:
                    continue  # reported above
                target_rank = LAYERS[target][0]
                if target_rank > rank or (target_rank == rank and target != layer):
                    problems.append(f"{path.relative_to(root)} ({layer}) includes {included} of layer {target}")
                continue
            target = layer_of_folder(where)
            if target is None or where == folder:
                continue
            exported = EXPORTED.get(target, [])
            if exported != "*" and name not in exported:
                problems.append(f"{path.relative_to(root)} ({layer}) includes {included}, private to src/{where}")
            elif LAYERS[target][0] >= rank and target != layer:
                problems.append(f"{path.relative_to(root)} ({layer}) includes {included} of layer {target}")
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} include(s) break the layering (docs/architecture.md)")
        return 1
    print(f"layers: {len(sources)} files checked, every include goes to its own layer or one below")
    return 0


def self_test():
    """The check must fail on a tree that breaks each rule: exit 0 when it does."""
    import contextlib
    import io
    import tempfile
    cases = {
        "a core file including an imaging header": ("src/core/bad.cpp", '#include "edgefleet/pipeline.h"\n'),
        "a sibling layer's header": ("src/serve/bad.cpp", '#include "edgefleet/port.h"\n'),
        "another module's private header": ("src/peers/bad.cpp", '#include "port/channel_pruning.h"\n'),
        "an exported header of a layer above": ("src/model/bad.cpp", '#include "zoo/training.h"\n'),
    }
    failures = 0
    for what, (bad_file, text) in cases.items():
        with tempfile.TemporaryDirectory() as tmp:
            root = pathlib.Path(tmp)
            (root / "include" / "edgefleet").mkdir(parents=True)
            for layer, headers in PUBLIC.items():
                for h in headers:
                    (root / "include" / "edgefleet" / f"{h}.h").write_text("#pragma once\n")
            (root / "src" / "core").mkdir(parents=True)
            (root / "src" / "core" / "fine.cpp").write_text('#include "edgefleet/status.h"\n')
            path = root / bad_file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            with contextlib.redirect_stdout(io.StringIO()) as out:
                status = main(root)
            if status != 1 or bad_file not in out.getvalue():
                print(f"self-test: the check missed {what} ({bad_file})")
                failures += 1
            (root / bad_file).unlink()
            with contextlib.redirect_stdout(io.StringIO()):
                if main(root) != 0:
                    print(f"self-test: the check refused a clean tree after removing {bad_file}")
                    failures += 1
    print(f"self-test: {len(cases) - failures} of {len(cases)} planted violations caught")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--self-test":
        sys.exit(self_test())
    sys.exit(main(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)))
