#!/usr/bin/env bash
# posix-shm under Deno (issue #15), run by .ci/run after the build. From the
# checkout and again from the packed tarballs installed into a scratch
# project (no registry): examples/ten-ints.mjs, examples/demo.mjs at 64 MiB
# (checkout only), and scripts/runtime-smoke.mjs (a round trip by name with
# a real Node process both ways, posix-shm wait/notify across the two,
# shared: true refused as Deno cannot make the buffer, copy mode chosen from
# JavaScript, node:fs refusing our descriptors); then that a run missing one
# permission fails with a message naming it.
#
# Permissions: the package needs --allow-ffi --allow-env and, for
# napi-rs's loader (it reads /usr/bin/ldd to tell glibc from musl),
# --allow-read=/usr/bin/ldd; from a checkout, --allow-read for dist/ too.
# The examples and the smoke script start child processes: --allow-run.
#
# Deno comes from the npm registry, as the package @deno/linux-x64-glibc
# (the binary is in the tarball; --ignore-scripts, nothing else is
# downloaded), installed once into ${XDG_CACHE_HOME:-$HOME/.cache}/posix-shm/deno
# and reused. DENO_VERSION (default 2.9.6) picks the version.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
started=$SECONDS
say() { printf '\n--- deno: %s (%ss)\n' "$*" $((SECONDS - started)); }
fail() { echo "deno: $*" >&2; exit 1; }

version=${DENO_VERSION:-2.9.6}
dir=${XDG_CACHE_HOME:-$HOME/.cache}/posix-shm/deno
deno=$dir/node_modules/@deno/linux-x64-glibc/deno
key=linux-x64-gnu
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export NO_COLOR=1 SMOKE_NODE
SMOKE_NODE=$(command -v node)

if [ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]; then
  fail "this script installs @deno/linux-x64-glibc and runs only on Linux x86_64"
fi
[ -f dist/index.js ] && [ -f "native/posix-shm.$key.node" ] || fail "build first (npm run build)"

say "Deno $version"
if [ ! -x "$deno" ] || [ "$("$deno" --version 2>/dev/null | head -n 1 | cut -d' ' -f2)" != "$version" ]; then
  echo "installing @deno/linux-x64-glibc@$version into $dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  npm install --prefix "$dir" --ignore-scripts --no-save --no-audit --no-fund --loglevel=error "@deno/linux-x64-glibc@$version"
fi
"$deno" --version | head -n 1

# Runs `deno run --no-prompt <permissions> <script> [args]` with what it
# prints shown; for ten-ints.mjs, checks the reader's line.
run() {
  local out
  out=$("$deno" run --no-prompt "$@")
  echo "$out"
  case $* in
    *ten-ints.mjs*) grep -Eq 'reader \(pid [0-9]+\) sees: 0 10 20 30 40 50 60 70 80 90' <<<"$out" || fail "the reader did not print the ten ints" ;;
  esac
}
# Runs the smoke script's load role with `permissions`, which must fail,
# printing `expected` (a fixed string) on stderr.
refused() {
  local script=$1 expected=$2 err
  shift 2
  if err=$("$deno" run --no-prompt "$@" "$script" load 2>&1 >/dev/null); then
    fail "loaded with only $*"
  fi
  grep -qF -- "$expected" <<<"$err" || fail "with only $*, expected \"$expected\" in: $err"
  echo "with only ${*:-no permission}: $(head -n 1 <<<"$err")"
}

checkout=(--allow-ffi --allow-env --allow-read --allow-run)
say "from the checkout: deno run ${checkout[*]}"
run "${checkout[@]}" examples/ten-ints.mjs
run "${checkout[@]}" examples/demo.mjs --total-mib 64 --region-mib 8
run "${checkout[@]}" scripts/runtime-smoke.mjs

say "from the checkout: a missing permission is named"
refused scripts/runtime-smoke.mjs 'ERR_SHM_DENO_PERMISSION: posix-shm cannot load its native binary in Deno without --allow-ffi (' --allow-env --allow-read
refused scripts/runtime-smoke.mjs 'ERR_SHM_DENO_PERMISSION: posix-shm cannot load its native binary in Deno without --allow-env (' --allow-ffi --allow-read
# Reading dist/ from a checkout fails in Deno's own loader, which names it.
refused scripts/runtime-smoke.mjs 'run again with the --allow-read flag' --allow-ffi --allow-env

say "pack, and install from the tarballs with no registry"
cp -r "npm/$key" "$work/platform"
cp "native/posix-shm.$key.node" "$work/platform/"
npm pack --silent --pack-destination "$work" >/dev/null
(cd "$work/platform" && npm pack --silent --pack-destination "$work" >/dev/null)
mkdir "$work/app"
cd "$work/app"
echo '{ "name": "posix-shm-deno-consumer", "version": "1.0.0", "private": true }' > package.json
npm install --offline --no-audit --no-fund --loglevel=error --registry http://127.0.0.1:9/ "$work"/posix-shm-[0-9]*.tgz "$work"/posix-shm-$key-*.tgz
cp "$root/examples/ten-ints.mjs" "$root/scripts/runtime-smoke.mjs" .

installed=(--allow-ffi --allow-env --allow-read=/usr/bin/ldd --allow-run)
say "from the install: deno run ${installed[*]}"
run "${installed[@]}" ten-ints.mjs
run "${installed[@]}" runtime-smoke.mjs

say "from the install: a missing permission is named"
refused runtime-smoke.mjs 'ERR_SHM_DENO_PERMISSION: posix-shm cannot load its native binary in Deno without --allow-ffi (' --allow-env --allow-read
refused runtime-smoke.mjs 'ERR_SHM_DENO_PERMISSION: posix-shm cannot load its native binary in Deno without --allow-env (' --allow-ffi --allow-read
refused runtime-smoke.mjs 'ERR_SHM_DENO_PERMISSION: posix-shm cannot load its native binary in Deno without --allow-read (' --allow-ffi --allow-env
refused runtime-smoke.mjs 'ERR_SHM_DENO_PERMISSION: posix-shm cannot load its native binary in Deno without --allow-ffi (' 

say "passed"
