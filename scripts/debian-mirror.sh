#!/usr/bin/env bash
# Prints the Debian archive URI this machine's apt already uses, so the project
# never names a mirror of its own. Reads deb822 sources first, then one-line ones.
set -euo pipefail
shopt -s nullglob
for f in /etc/apt/sources.list.d/*.sources; do
  # A deb822 stanza whose Suites name a plain release (not -security).
  uri=$(awk '
    /^URIs:/   { u = $2 }
    /^Suites:/ { if ($0 !~ /security/) s = 1; else s = 0 }
    /^$/       { if (u && s) { print u; exit } u = ""; s = 0 }
    END        { if (u && s) print u }' "$f" | head -1)
  if [ -n "$uri" ]; then echo "${uri%/}"; exit 0; fi
done
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] || continue
  uri=$(awk '$1 == "deb" && $0 !~ /security/ {
           for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f")
  if [ -n "$uri" ]; then echo "${uri%/}"; exit 0; fi
done
echo "debian-mirror.sh: no Debian archive found in the apt sources" >&2
exit 1
