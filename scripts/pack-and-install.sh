#!/usr/bin/env bash
# Pack-and-install check: what `npm install posix-shm` gives a user on this
# platform, with no Rust, no C compiler and no registry. Builds the release
# binary, packs the root package and the linux-x64-gnu platform package,
# installs both from the tarballs into a fresh project with npm kept off any
# registry and a PATH holding only node and npm, and checks that the package
# loads from CommonJS and ESM, type-checks under --strict (with Node's
# types, and with nothing but posix-shm installed), and works.
#
# POSIX_SHM_PREBUILT_ADDON=1 builds only the facade and packs the addon
# already in native/ (one built elsewhere), instead of `npm run build`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
key=linux-x64-gnu
binary=posix-shm.$key.node
work=$(mktemp -d)
trap 'rm -rf "$work"; rm -f "$root/npm/$key/$binary"' EXIT

cd "$root"
if [ "${POSIX_SHM_PREBUILT_ADDON:-0}" = 1 ]; then
  [ -f "native/$binary" ] || { echo "POSIX_SHM_PREBUILT_ADDON=1, but native/$binary is missing" >&2; exit 1; }
  npm run build:ts >/dev/null
else
  npm run build >/dev/null
fi

echo "--- the platform package's binary is stripped"
cp "native/$binary" "npm/$key/$binary"
if nm "npm/$key/$binary" 2>&1 | grep -qv 'no symbols'; then
  echo "npm/$key/$binary still has a symbol table" >&2
  exit 1
fi
echo "$binary: no symbol table"

echo "--- pack"
npm pack --silent --pack-destination "$work" >/dev/null
(cd "npm/$key" && npm pack --silent --pack-destination "$work" >/dev/null)
root_tgz=$(ls "$work"/posix-shm-[0-9]*.tgz)
platform_tgz=$(ls "$work"/posix-shm-$key-*.tgz)
for tgz in "$root_tgz" "$platform_tgz"; do
  printf '%-40s %8d bytes packed, %3d files\n' "$(basename "$tgz")" "$(stat -c %s "$tgz")" "$(tar tzf "$tgz" | wc -l)"
done
if ! tar tzf "$root_tgz" | grep -qx 'package/index.d.ts'; then
  echo "the root tarball lacks index.d.ts, its public typings" >&2
  exit 1
fi
unwanted=$(tar tzf "$root_tgz" | grep -E '\.rs$|Cargo\.|/src/|/__test__/|/bench/|/lib/|/examples/|/scripts/|\.node$|\.ts$' | grep -v '\.d\.ts$' || true)
if [ -n "$unwanted" ]; then
  echo "the root tarball holds files a user does not need:" >&2
  echo "$unwanted" >&2
  exit 1
fi

echo "--- install from the tarballs: no registry, no compiler"
mkdir "$work/bin" "$work/app"
ln -s "$(command -v node)" "$work/bin/node"
ln -s "$(command -v npm)" "$work/bin/npm"
# Only node and npm: everything that installs or runs the package goes
# through this, so nothing it does can reach a compiler.
bare() { PATH="$work/bin" "$@"; }
for tool in cargo rustc cc gcc clang make; do
  if bare sh -c "command -v $tool" >/dev/null 2>&1; then
    echo "$tool is still on PATH" >&2
    exit 1
  fi
done
cd "$work/app"
cat > package.json <<'JSON'
{ "name": "posix-shm-consumer", "version": "1.0.0", "private": true }
JSON
bare npm install --offline --no-audit --no-fund --registry http://127.0.0.1:9/ "$root_tgz" "$platform_tgz"

echo "--- require"
bare node -e "
  const shm = require('posix-shm')
  if (typeof shm.SharedMemory !== 'function' || typeof shm.shmOpen !== 'function') throw new Error('API missing')
  console.log('require: ' + Object.keys(shm).length + ' exports')
"

echo "--- import"
bare node --input-type=module -e "
  import { SharedMemory } from 'posix-shm'
  console.log('import: SharedMemory is a ' + typeof SharedMemory)
"

echo "--- a TypeScript consumer with Node's types compiles under --strict against the shipped typings"
cp "$root/__test__/types/consumer.ts" consumer.ts
cat > tsconfig.json <<JSON
{
  "compilerOptions": {
    "target": "ES2022", "module": "nodenext", "moduleResolution": "nodenext", "lib": ["ES2022"],
    "strict": true, "noEmit": true, "types": ["node"], "typeRoots": ["$root/node_modules/@types"]
  },
  "files": ["consumer.ts"]
}
JSON
bare node "$root/node_modules/typescript/bin/tsc" -p tsconfig.json
echo "tsc --strict: no errors"

echo "--- a TypeScript consumer that installed only posix-shm compiles under --strict"
# Nothing but the two tarballs in node_modules: no @types/node, no DOM
# library, and no "types" setting, so tsc sees only what posix-shm ships.
if [ -e node_modules/@types ]; then
  echo "the scratch project has node_modules/@types: $(ls node_modules/@types)" >&2
  exit 1
fi
cp "$root/__test__/types/bare-consumer.ts" bare-consumer.ts
cat > tsconfig.bare.json <<JSON
{
  "compilerOptions": {
    "target": "ES2022", "module": "nodenext", "moduleResolution": "nodenext", "lib": ["ES2022"],
    "strict": true, "noEmit": true, "noUnusedLocals": true
  },
  "files": ["bare-consumer.ts"]
}
JSON
bare node "$root/node_modules/typescript/bin/tsc" -p tsconfig.bare.json
# The @ts-expect-error lines must be errors: without their directives, tsc must fail.
sed 's|^\( *\)// @ts-expect-error.*$|\1// (directive removed)|' bare-consumer.ts > refused.ts
sed 's/bare-consumer.ts/refused.ts/' tsconfig.bare.json > tsconfig.refused.json
if bare node "$root/node_modules/typescript/bin/tsc" -p tsconfig.refused.json > refused.log; then
  echo "tsc accepted the calls marked @ts-expect-error" >&2
  exit 1
fi
expected=$(grep -c '^ *// @ts-expect-error' bare-consumer.ts)
found=$(grep -c 'error TS' refused.log)
if [ "$found" != "$expected" ]; then
  echo "expected $expected errors without the @ts-expect-error directives, tsc reported $found:" >&2
  cat refused.log >&2
  exit 1
fi
echo "tsc --strict, no @types/node: no errors; the $expected wrong calls are refused"

echo "--- create, map, write, read"
bare node -e "
  const { SharedMemory } = require('posix-shm')
  const name = 'pack-check-' + process.pid
  const writer = SharedMemory.create(name, 4096)
  writer.buffer.write('installed from a tarball', 0)
  const reader = SharedMemory.open(name, { readOnly: true })
  const text = reader.buffer.toString('utf8', 0, 24)
  reader.close(); writer.unlink(); writer.close()
  if (text !== 'installed from a tarball') throw new Error('read back: ' + text)
  console.log('round trip: ' + text)
"
echo "pack-and-install: ok"
