#!/usr/bin/env bash
# Builds bench/kernels/decode_reads.cpp with the project's Emscripten (the
# relaxed-SIMD flags of the package's relaxed build) into build/kernels and
# runs it in Node 24: a Markdown table of decoding's kernels from DRAM and
# from cache. Not part of `npm test` or `npm run bench`.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p build/kernels
bash scripts/toolchain.sh run em++ -std=c++17 -O3 -msimd128 -mrelaxed-simd -DNDEBUG \
  -Isrc -I.deps/xsimd/include bench/kernels/decode_reads.cpp \
  src/attention_kernels.cpp src/kernels_simd.cpp src/gemm.cpp src/weight_formats.cpp \
  -sALLOW_MEMORY_GROWTH=1 -sENVIRONMENT=node -sEXPORT_ES6=1 -o build/kernels/decode_reads.mjs
bash scripts/node.sh 24 --input-type=module -e \
  "const f = (await import('$PWD/build/kernels/decode_reads.mjs')).default; await f();"
