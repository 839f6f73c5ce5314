#!/usr/bin/env bash
# The README's test command: installs what is missing, builds everything, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
ctest --test-dir "${EDGEFLEET_BUILD_DIR:-build}" -j"$(nproc)" --output-on-failure --timeout 600
