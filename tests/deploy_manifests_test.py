#!/usr/bin/env python3
"""The deployment manifests (deploy/*.yaml, deploy/Dockerfile) parse and ask the server only
for what it has: every flag and EDGEFLEET_* variable they set is one `edgefleet serve`
accepts, probes hit the health endpoints, the container port is the one the server binds,
and the server does read its settings from those variables.
Usage: deploy_manifests_test.py EDGEFLEET_BINARY SOURCE_DIR   (exit 77 = skipped: no PyYAML)
"""
import os
import pathlib
import re
import subprocess
import sys

try:
    import yaml
except ImportError:
    print("SKIP: python3-yaml is not installed")
    sys.exit(77)

HEALTH = {"/v2/health/ready", "/v2/health/live"}


def main(binary, root):
    problems = []
    help_text = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True, check=True).stdout
    flags = set(re.findall(r"(--[a-z0-9-]+)", help_text))
    env_names = set(re.findall(r"Env:\s*(EDGEFLEET_[A-Z_]+)", help_text)) | {"EDGEFLEET_TOKEN"}

    def check_env(name, where):
        if name.startswith("EDGEFLEET_") and name not in env_names:
            problems.append(f"{where}: sets {name}, which edgefleet serve does not read")

    manifests = sorted((root / "deploy").glob("*.yaml"))
    if not manifests:
        problems.append("no deploy/*.yaml")
    containers = 0
    for path in manifests:
        for doc in yaml.safe_load_all(path.read_text()):
            where = f"{path.name}: {doc.get('kind')} {doc.get('metadata', {}).get('name')}"
            for key in ("apiVersion", "kind", "metadata"):
                if key not in doc:
                    problems.append(f"{where}: no {key}")
            spec = doc.get("spec", {})
            pod = spec.get("template", {}).get("spec", spec)
            for c in pod.get("containers", []):
                if c.get("command", [])[:2] != ["edgefleet", "serve"]:
                    continue
                containers += 1
                args = c.get("args", [])
                for a in args:
                    if a.startswith("--") and a not in flags:
                        problems.append(f"{where}: argument {a} is not a flag of edgefleet serve")
                env = {e["name"]: e.get("value") for e in c.get("env", [])}
                for name in env:
                    check_env(name, where)
                port = args[args.index("--port") + 1] if "--port" in args else env.get("EDGEFLEET_PORT", "8000")
                named = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
                if int(port) not in named.values():
                    problems.append(f"{where}: the server binds {port}, the container exposes {sorted(named.values())}")
                grpc_port = args[args.index("--grpc-port") + 1] if "--grpc-port" in args else env.get("EDGEFLEET_GRPC_PORT")
                if grpc_port is not None and int(grpc_port) > 0 and int(grpc_port) not in named.values():
                    problems.append(f"{where}: the server serves gRPC on {grpc_port}, the container exposes {sorted(named.values())}")
                for probe in ("readinessProbe", "livenessProbe"):
                    get = c.get(probe, {}).get("httpGet", {})
                    if get.get("path") not in HEALTH:
                        problems.append(f"{where}: {probe} path {get.get('path')} is not a health endpoint")
                    target = get.get("port")
                    if named.get(target, target) != int(port):
                        problems.append(f"{where}: {probe} probes port {target}, the server binds {port}")
    if containers == 0:
        problems.append("no container runs edgefleet serve")
    for line in (root / "deploy" / "Dockerfile").read_text().splitlines():
        if line.startswith("ENV "):
            for name in re.findall(r"(EDGEFLEET_[A-Z_]+)=", line):
                check_env(name, "Dockerfile")

    # The variables are read: a repository and a port given only through them.
    environment = dict(os.environ, EDGEFLEET_REPOSITORY="/nonexistent/edgefleet-repo", EDGEFLEET_PORT="0")
    run = subprocess.run([binary, "serve"], capture_output=True, text=True, env=environment, timeout=60)
    if run.returncode == 0 or "/nonexistent/edgefleet-repo" not in run.stderr:
        problems.append(f"EDGEFLEET_REPOSITORY was not used: exit {run.returncode}, {run.stderr.strip()[:200]}")
    environment["EDGEFLEET_PORT"] = "not-a-port"
    run = subprocess.run([binary, "serve"], capture_output=True, text=True, env=environment, timeout=60)
    if run.returncode != 2:
        problems.append(f"a malformed EDGEFLEET_PORT was not a usage error: exit {run.returncode}")

    for p in problems:
        print(p)
    print(f"{len(manifests)} manifests, {containers} edgefleet containers, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], pathlib.Path(sys.argv[2])))
