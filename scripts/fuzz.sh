#!/usr/bin/env bash
# Builds the decoder fuzz target with clang (libFuzzer + ASan + UBSan) and runs it.
# Usage: scripts/fuzz.sh [seconds, default 60]   Exit status non-zero on a finding.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build_dir=${EDGEFLEET_FUZZ_BUILD_DIR:-build-fuzz}
CC=clang CXX=clang++ cmake -S fuzz -B "$build_dir" -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
corpus="$build_dir/corpus"
mkdir -p "$corpus" "$build_dir/findings"
export LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
"$build_dir/make_seed_corpus" "$corpus"
"$build_dir/fuzz_decode" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=3072 -timeout=20 \
  -artifact_prefix="$build_dir/findings/" -print_final_stats=1 "$corpus"
