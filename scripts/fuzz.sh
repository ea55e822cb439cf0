#!/usr/bin/env bash
# Builds the libFuzzer target with clang (ASan + UBSan) and fuzzes the C++
# entry for a bounded time, growing tests/fuzz/corpus. A crash is saved to
# tests/fuzz/regressions/, where CTest replays it from then on.
#   scripts/fuzz.sh [seconds]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
out=build/fuzz
mkdir -p "$out" tests/fuzz/corpus tests/fuzz/regressions
# The core's sources as CMake lists them (written when build/native is
# configured: scripts/build.sh runs first).
[ -f build/native/core_sources.txt ] || { echo "fuzz.sh: run scripts/build.sh first" >&2; exit 1; }
# (The file has no final newline, which read would report as a failure.)
IFS=';' read -r -a core_sources < build/native/core_sources.txt || [ ${#core_sources[@]} -gt 0 ]
clang++ -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -Isrc -isystem .deps/xsimd/include \
  tests/fuzz/fuzz_forward.cpp "${core_sources[@]}" src/reference.cpp \
  -o "$out/fuzz_forward"
echo "== fuzzing the C++ entry for ${seconds}s"
"$out/fuzz_forward" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 \
  -artifact_prefix=tests/fuzz/regressions/ tests/fuzz/corpus
