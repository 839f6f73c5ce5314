#!/usr/bin/env bash
# Builds everything with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/ and
# runs the whole test suite there. Exit status non-zero on any failure or sanitizer report.
set -euo pipefail
cd "$(dirname "$0")/.."
export EDGEFLEET_BUILD_DIR=${EDGEFLEET_BUILD_DIR:-build-asan}
export EDGEFLEET_CMAKE_ARGS="-DEDGEFLEET_SANITIZE=ON -DEDGEFLEET_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo"
scripts/build.sh
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
cd "$EDGEFLEET_BUILD_DIR"
ctest --output-on-failure -j"$(nproc)" --timeout 900
