#!/usr/bin/env bash
# The README's main command: installs what is missing, builds the CLI, and runs the main
# job on the built-in defaults: the fleet, the zoo, and the zoo evaluated on Fashion-MNIST.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh --target edgefleet_cli
edgefleet=${EDGEFLEET_BUILD_DIR:-build}/edgefleet

echo; echo "== the built-in fleet (fleet/) =="
"$edgefleet" fleet list
echo; echo "== the built-in zoo (models/fashion-mnist/) =="
"$edgefleet" zoo list
echo; echo "== the zoo evaluated on the Fashion-MNIST test set =="
"$edgefleet" zoo eval --data fashion-mnist
