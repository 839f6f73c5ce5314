#!/usr/bin/env bash
# Replays papers/mdinference.md §V-D (duplication, SLA 250 ms, university and residential
# networks) with the real server and client: the ImageNet models of ../shared/imagenet as one
# task served by `edgefleet serve`, `edgefleet infer` racing mobilenet_v1_0.25 on the "device"
# against it over an emulated network, for every selection policy. Prints Markdown.
# Usage: bench/mdinference_serve_repro.sh [REQUESTS] [CONCURRENCY] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
edgefleet=${EDGEFLEET_BUILD_DIR:-build}/edgefleet
requests=${1:-1500}
concurrency=${2:-2}
out=${3:-$(mktemp -d)}
shared=../shared/imagenet
[[ -d $shared/models && -d $shared/images ]] || { echo "needs $shared/models and $shared/images" >&2; exit 1; }
mkdir -p "$out"

rm -rf "$out/repository"
"$edgefleet" repository add "$out/repository" --task imagenet \
  "$shared"/models/{mobilenet_v1_0.25,mobilenet_v1_0.75,squeezenet1_1,tiny_darknet}.json >/dev/null
"$edgefleet" serve --repository "$out/repository" --port 0 --instances 1 >"$out/serve.out" 2>"$out/serve.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1200); do grep -q listening "$out/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$out/serve.out")
[[ -n $url ]] || { cat "$out/serve.log" >&2; exit 1; }

policies="mdinference static-greedy static-accuracy static-latency random related-random related-accurate"
for network in university:normal:57.87:30.79 residential:normal:92.02:48.38; do
  name=${network%%:*}
  for policy in $policies; do
    result="$out/$name-$policy.json"
    [[ -s $result ]] && continue  # finished in an earlier, interrupted run
    "$edgefleet" infer --url "$url" --model imagenet --sla 250 --local "$shared/models/mobilenet_v1_0.25.json" \
      --network "${network#*:}" --policy "$policy" --data "$shared/images" --requests "$requests" \
      --concurrency "$concurrency" --out "$result.part" >"$out/$name-$policy.log"
    mv "$result.part" "$result"
  done
done
kill -TERM $server && wait $server
trap - EXIT

echo "### §V-D replayed: $requests requests per run, $concurrency clients, SLA 250 ms, local mobilenet_v1_0.25"
echo
echo "| policy | university: on-device reliance | university: aggregate accuracy | university: p99 ms | residential: on-device reliance | residential: aggregate accuracy | residential: p99 ms |"
echo "|---|---:|---:|---:|---:|---:|---:|"
/usr/bin/python3 - "$out" $policies <<'PY'
import json, sys
out, policies = sys.argv[1], sys.argv[2:]
for p in policies:
    cells = []
    for net in ("university", "residential"):
        r = json.load(open(f"{out}/{net}-{p}.json"))
        cells += [f"{100*r['on_device_reliance']:.2f}%", f"{100*r['aggregate_accuracy']:.2f}%", f"{r['p99_latency_ms']:.0f}"]
    print(f"| {p} | " + " | ".join(cells) + " |")
print()
print("Remote answers by variant (university / residential):")
print()
for p in policies:
    parts = []
    for net in ("university", "residential"):
        r = json.load(open(f"{out}/{net}-{p}.json"))
        parts.append(", ".join(f"{k} {v}" for k, v in sorted(r["answers_by_model"].items())))
    print(f"- {p}: {parts[0]} / {parts[1]}")
PY
