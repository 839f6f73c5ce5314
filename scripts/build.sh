#!/usr/bin/env bash
# Configures and builds edgefleet (Release, ccache when present) into build/.
# Usage: scripts/build.sh [cmake --build arguments, e.g. --target edgefleet_cli]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${EDGEFLEET_BUILD_DIR:-build}
# ccache keyed on paths relative to the checkout, so another clone (CI's) reuses the cache.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release ${EDGEFLEET_CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j"$(nproc)" "$@"
