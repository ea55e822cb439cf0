#!/usr/bin/env bash
# The WebAssembly toolchain: Emscripten >= 4 (embind, relaxed SIMD).
#
#   scripts/toolchain.sh ensure      provisions it if needed, prints what it uses
#   scripts/toolchain.sh run CMD...  runs CMD (em++, emcmake, cmake, wasm-dis...)
#                                    with it, in the current folder
#
# An em++ >= 4 already on PATH (a contributor's emsdk) is used as it is.
# Otherwise Debian's current Emscripten is installed into a Debian root of its
# own (forky: its Emscripten needs a newer C library than bookworm's) under a
# cache folder outside the clone, so that every clone on the machine reuses
# it; the system's apt sources are never touched. Commands run in that root
# through a private mount namespace (unshare -m): the project tree is
# bind-mounted at its own path there, and the mount dies with the process,
# even when the build is interrupted, so nothing is ever left mounted.
set -euo pipefail

EMSCRIPTEN_MIN=4
SUITE=forky
CACHE=${MHA_WASM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mha-wasm}
ROOT=$CACHE/$SUITE-root
STAMP=$ROOT/.mha-wasm-toolchain   # its Emscripten version; the root is renamed into place only once complete

log() { printf '[toolchain] %s\n' "$*" >&2; }

version_of() { grep -o '[0-9]\+\.[0-9]\+\.[0-9]\+' | head -1; }
new_enough() { local v=${1:-0}; [ "${v%%.*}" -ge "$EMSCRIPTEN_MIN" ] 2>/dev/null; }

host_version() { command -v em++ >/dev/null 2>&1 && em++ --version 2>/dev/null | head -1 | version_of; }
host_ok() { new_enough "$(host_version)"; }  # an em++ on PATH that is new enough

provision() {
  [ "$(id -u)" = 0 ] || { echo "toolchain.sh: provisioning needs root (or put an em++ >= $EMSCRIPTEN_MIN on PATH)" >&2; exit 1; }
  command -v debootstrap >/dev/null 2>&1 || {
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  }
  local mirror script tmp
  mirror=$("$(dirname "$0")/debian-mirror.sh")
  # Bookworm's debootstrap has no script for forky; sid's is the same recipe.
  script=/usr/share/debootstrap/scripts/sid
  tmp=$ROOT.partial
  rm -rf "$tmp"
  mkdir -p "$CACHE"
  log "making a Debian $SUITE root for Emscripten in $ROOT (about a minute and 1.3 GB, once per machine)"
  debootstrap --variant=minbase "$SUITE" "$tmp" "$mirror" "$script" >"$CACHE/debootstrap.log" 2>&1 ||
    { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
  # The mirrored Release file of a testing suite can be past its Valid-Until.
  chroot "$tmp" apt-get -qq -o Acquire::Check-Valid-Until=false update
  chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    emscripten cmake make binaryen >"$CACHE/apt.log" 2>&1 || { tail -20 "$CACHE/apt.log" >&2; exit 1; }
  chroot "$tmp" apt-get clean
  chroot "$tmp" em++ --version 2>/dev/null | head -1 | version_of > "$tmp/.mha-wasm-toolchain"
  rm -rf "$ROOT"
  mv "$tmp" "$ROOT"
}

ensure() {
  if host_ok; then echo "Emscripten $(host_version) from PATH"; return; fi
  if [ -f "$STAMP" ]; then
    if new_enough "$(version_of < "$STAMP")"; then echo "Emscripten $(cat "$STAMP") in the $SUITE root"; return; fi
    log "the root in $ROOT has Emscripten $(cat "$STAMP"), older than $EMSCRIPTEN_MIN: making it again"
  fi
  provision
  echo "Emscripten $(cat "$STAMP") in the $SUITE root"
}

run() {
  if host_ok; then exec "$@"; fi
  [ -f "$STAMP" ] || { echo "toolchain.sh: no toolchain yet; run scripts/toolchain.sh ensure" >&2; exit 1; }
  local here
  here=$(pwd -P)
  mkdir -p "$ROOT$here" "$ROOT/proc" "$ROOT/dev"
  # Inside a private mount namespace: the tree at its own path (so CMake
  # caches and messages name the same paths in and out), /proc and /dev for
  # Node and the compilers. All of it vanishes when this process ends.
  exec unshare -m -- sh -c '
    set -e
    root=$1; here=$2; shift 2
    mount --make-rprivate / 2>/dev/null || true
    mount --bind "$here" "$root$here"
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    exec chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/tmp \
      CI="${CI:-}" LANG=C.UTF-8 sh -c "cd \"\$0\" && exec \"\$@\"" "$here" "$@"
  ' mount-ns "$ROOT" "$here" "$@"
}

case "${1:-}" in
  ensure) ensure ;;
  run) shift; run "$@" ;;
  *) echo "usage: scripts/toolchain.sh ensure | run CMD..." >&2; exit 2 ;;
esac
