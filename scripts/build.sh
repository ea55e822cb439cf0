#!/usr/bin/env bash
# Builds what is missing or stale, reusing earlier builds:
#   build/wasm        -> dist/ (four builds of the module, index.js, index.d.ts)
#   build/wasm-asan   -> build/wasm-asan/dist: the single-threaded SIMD128
#                        module under AddressSanitizer + UBSan and a copy of
#                        the wrapper, for scripts/test.sh only (never shipped)
#   build/native      -> native GoogleTest suite (tests/native)
#   build/native-asan -> the same suite under AddressSanitizer + UBSan
# The WebAssembly build runs with Emscripten >= 4 (scripts/toolchain.sh);
# the native ones with the host's compilers.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

configure() {  # dir, then the command that configures it; once, later builds reuse it
  local dir=$1; shift
  [ -f "$dir/CMakeCache.txt" ] || "$@" -B "$dir" -S . >/dev/null
}

wasm() { scripts/toolchain.sh run "$@"; }
configure build/wasm wasm emcmake cmake -DCMAKE_BUILD_TYPE=Release
wasm cmake --build build/wasm -j "$jobs"
configure build/wasm-asan wasm emcmake cmake -DCMAKE_BUILD_TYPE=Release -DMHA_WASM_SANITIZE=ON \
  -DMHA_DIST_DIR="$PWD/build/wasm-asan/dist"
wasm cmake --build build/wasm-asan -j "$jobs"
configure build/native cmake -DCMAKE_BUILD_TYPE=Release -DMHA_BUILD_TESTS=ON
cmake --build build/native -j "$jobs"
configure build/native-asan cmake -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMHA_BUILD_TESTS=ON -DMHA_SANITIZE=ON
cmake --build build/native-asan -j "$jobs"
