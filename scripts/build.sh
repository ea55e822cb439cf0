#!/usr/bin/env bash
# Builds what is missing or stale, reusing earlier builds:
#   build/wasm    -> dist/ (mha-core.mjs, mha-core.wasm, index.js, index.d.ts)
#   build/native  -> native GoogleTest suite (tests/native)
#   build/native-asan -> the same suite under AddressSanitizer + UBSan
set -euo pipefail
cd "$(dirname "$0")/.."
# emcc's JS optimiser needs acorn, which Debian installs outside Node's search path.
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}
jobs=$(nproc)

configure() {  # dir, then cmake arguments; configure once, later builds reuse it
  local dir=$1; shift
  [ -f "$dir/CMakeCache.txt" ] || "$@" -B "$dir" -S . >/dev/null
}

configure build/wasm emcmake cmake -DCMAKE_BUILD_TYPE=Release
cmake --build build/wasm -j "$jobs"
configure build/native cmake -DCMAKE_BUILD_TYPE=Release -DMHA_BUILD_TESTS=ON
cmake --build build/native -j "$jobs"
configure build/native-asan cmake -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMHA_BUILD_TESTS=ON -DMHA_SANITIZE=ON
cmake --build build/native-asan -j "$jobs"
