#!/usr/bin/env bash
# Collective adaptation (along the goal tree) vs adapting every goal independently from the
# base model, with the same executor, knobs and fine-tuning, in one run (papers/mistify.md
# §7: ~10x less porting time). Goals: MACs budgets from 90% to 15% of the base, every third
# also bounding parameters, so the tree has branches. Prints Markdown.
# Usage: bench/port_collective.sh [GOALS] [BASE] [ALGORITHM] [OUT_DIR]   (default 10 cnn_plain morphnet)
# FINETUNE='{"steps": 400, "patience": 2, "check_every": 25, "from_parent": true}' replaces the
# fine-tuning recipe (from_parent: collective goals continue their parent's fine-tuning; the
# plateau rule is the same in both modes).
# BASE may also be a card (.json), e.g. ../shared/imagenet/models/mobilenet_v2_1.0.json; then
# EXTRA (JSON merged into the config) names its data, e.g. '{"dataset": "../shared/imagenette/train",
# "validation": "../shared/imagenette/val", "train_images": 1200, "eval_images": 300}'.
# RANGE="0.95 0.30": the largest and smallest MACs budget, as fractions of the base's.
set -euo pipefail
cd "$(dirname "$0")/.."
goals=${1:-10}
base=${2:-cnn_plain}
algorithm=${3:-morphnet}
out=${4:-$(mktemp -d)}
edgefleet=${EDGEFLEET_BUILD_DIR:-build}/edgefleet
card=models/fashion-mnist/$base.json
[[ $base == *.json ]] && card=$(realpath "$base") && base=$card
extra=${EXTRA:-'{}'}
read -r largest smallest <<<"${RANGE:-0.9 0.15}"
macs=$(jq .macs "$card")
params=$(jq .params "$card")
mkdir -p "$out"
finetune=${FINETUNE:-'{"steps": 200}'}
jq -n --argjson finetune "$finetune" --argjson n "$goals" --argjson macs "$macs" --argjson params "$params" --arg base "$base" --arg algorithm "$algorithm" \
  --argjson extra "$extra" --argjson largest "$largest" --argjson smallest "$smallest" '
  {base_model: $base, algorithm: $algorithm, train_images: 20000, eval_images: 2000, finetune: $finetune} + $extra +
  {goals: [range($n) as $i | ($largest - ($largest - $smallest) * $i / ([$n - 1, 1] | max)) as $f |
     {name: "g\($i)", max_macs: ($macs * $f | floor)} +
     (if $i % 3 == 2 then {max_params: ($params * ($f + 0.1) | floor)} else {} end)]}' >"$out/port.json"

for mode in collective independent; do
  [[ -s $out/$mode/port.json ]] && continue  # finished in an earlier, interrupted run
  start=$SECONDS
  "$edgefleet" port "$out/port.json" --out "$out/$mode" --mode "$mode" >"$out/$mode.log"
  echo $((SECONDS - start)) >"$out/$mode.seconds"
done

echo "### $goals goals, $base, $algorithm: collective vs independent"
echo
/usr/bin/python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
c = json.load(open(f"{out}/collective/port.json"))
i = json.load(open(f"{out}/independent/port.json"))
wall = {m: float(open(f"{out}/{m}.seconds").read()) for m in ("collective", "independent")}
print("| goal | MACs budget | adapted from (collective) | collective MACs | independent MACs | collective top-1 % | independent top-1 % | difference (points) | collective adapt s | independent adapt s | collective fine-tune steps | independent fine-tune steps |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
budgets = {g["name"]: g for g in json.load(open(f"{out}/port.json"))["goals"]}
worst = 0.0
for gc, gi in zip(c["goals"], i["goals"]):
    d = 100 * (gc["accuracy"] - gi["accuracy"])
    worst = min(worst, d)
    print(f"| {gc['goal']} | {budgets[gc['goal']]['max_macs']} | {gc['parent'] or 'base'} | {gc['cost']['macs']} | {gi['cost']['macs']} | "
          f"{100*gc['accuracy']:.2f} | {100*gi['accuracy']:.2f} | {d:+.2f} | {gc['adapt_seconds']:.1f} | {gi['adapt_seconds']:.1f} | "
          f"{gc.get('finetune_steps', '-')} | {gi.get('finetune_steps', '-')} |")
print()
print("| | collective | independent | ratio |")
print("|---|---:|---:|---:|")
for key, label in (("adapt_seconds", "adaptation s"), ("finetune_seconds", "fine-tuning s")):
    print(f"| {label} | {c[key]:.1f} | {i[key]:.1f} | {i[key]/c[key]:.2f}x |")
print(f"| whole run, wall s | {wall['collective']:.1f} | {wall['independent']:.1f} | {wall['independent']/wall['collective']:.2f}x |")
print()
print(f"Worst accuracy of collective vs independent: {worst:+.2f} points; all constraints met: "
      f"{all(g['constraints_met'] for g in c['goals'] + i['goals'])}.")
PY
