#!/usr/bin/env bash
# posix-shm under Bun (issue #15), run by .ci/run after the build: the
# examples, then scripts/runtime-smoke.mjs (a round trip by name with a real
# Node process both ways, posix-shm wait/notify across the two, a
# SharedArrayBuffer mapping posted to a Bun Worker and woken there by
# Atomics.notify, copy mode chosen from JavaScript).
#
# Bun comes from the npm registry, as the package @oven/bun-linux-x64 (the
# binary is in the tarball; --ignore-scripts, nothing else is downloaded),
# installed once into ${XDG_CACHE_HOME:-$HOME/.cache}/posix-shm/bun and
# reused. BUN_VERSION (default 1.4.5) picks the version.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
say() { printf '\n--- bun: %s (%ss)\n' "$*" $((SECONDS - started)); }

version=${BUN_VERSION:-1.4.5}
dir=${XDG_CACHE_HOME:-$HOME/.cache}/posix-shm/bun
bun=$dir/node_modules/@oven/bun-linux-x64/bin/bun

if [ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]; then
  echo "bun: this script installs @oven/bun-linux-x64 and runs only on Linux x86_64" >&2
  exit 1
fi
[ -f dist/index.js ] && ls native/posix-shm.*.node >/dev/null 2>&1 || { echo "bun: build first (npm run build)" >&2; exit 1; }

say "Bun $version"
if [ ! -x "$bun" ] || [ "$("$bun" --version 2>/dev/null)" != "$version" ]; then
  echo "installing @oven/bun-linux-x64@$version into $dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  npm install --prefix "$dir" --ignore-scripts --no-save --no-audit --no-fund --loglevel=error "@oven/bun-linux-x64@$version"
fi
echo "bun $("$bun" --version) at $bun"

say "examples/ten-ints.mjs"
out=$("$bun" examples/ten-ints.mjs)
echo "$out"
grep -Eq 'reader \(pid [0-9]+\) sees: 0 10 20 30 40 50 60 70 80 90' <<<"$out" || { echo "bun: the reader did not print the ten ints" >&2; exit 1; }

say "examples/demo.mjs --total-mib 64 --region-mib 8 (its consumer forked under Bun too)"
"$bun" examples/demo.mjs --total-mib 64 --region-mib 8

say "scripts/runtime-smoke.mjs"
SMOKE_NODE=$(command -v node) SMOKE_SHARED=required "$bun" scripts/runtime-smoke.mjs

say "passed"
