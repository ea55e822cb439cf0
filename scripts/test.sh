#!/usr/bin/env bash
# Runs every test against the build in build/ and dist/ (scripts/build.sh first):
# the native GoogleTest suite (CTest), the Node suite (part of it also against
# the module under ASan + UBSan, build/wasm-asan), the browser suite.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== native (ctest)"
ctest --test-dir build/native --output-on-failure -j "$(nproc)"

echo "== native under AddressSanitizer + UBSan (ctest)"
ctest --test-dir build/native-asan --output-on-failure -j "$(nproc)"

echo "== native under valgrind memcheck"
valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite -q \
  build/native/tests/native/mha_native_tests --gtest_brief=1
valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite -q \
  build/native/tests/native/mha_fuzz_replay tests/fuzz/corpus tests/fuzz/regressions

# The tests of the core through the public API again, against the module
# built under ASan + UBSan (build/wasm-asan); a sanitizer report fails the step.
echo "== node, against the WebAssembly module under AddressSanitizer + UBSan (build/wasm-asan)"
scripts/node.sh 24 tests/wasm_asan/run.mjs

# One runner for the Node, browser and package suites, so its closing summary
# counts them all. Node 24 runs them; the package-consumer tests run the
# installed package on Node 20 and 22 as well (scripts/node.sh finds them).
echo "== node, browser, package consumers (node --test on Node $(scripts/node.sh 24 --version); Chromium via playwright-core)"
scripts/node.sh 24 --test --test-concurrency=2 --test-reporter=spec 'tests/js/*.test.js' 'tests/browser/*.test.js' 'tests/package/*.test.js'
