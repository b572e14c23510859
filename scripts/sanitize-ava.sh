#!/usr/bin/env bash
# The ava suite under Valgrind memcheck, one spec file at a time.
#
# ava's main process stays native; every ava worker (the process that
# loads the addon and runs a spec's tests) runs under memcheck, with a
# debug build of the addon (symbols, line numbers, overflow checks and
# debug assertions) in place of the release one for the duration.
# Processes the tests spawn themselves run natively unless
# VALGRIND_CHILDREN=1 (slow; see the report).
#
# Any memcheck error that the suppressions below do not cover fails the
# run, whoever's it is; errors whose stack or allocation/free stacks touch
# the addon are flagged as ours. Leak checking is off: Node frees little
# at exit, and the addon's descriptors and mappings are counted by the
# tests themselves (/proc/self/fd, /proc/self/maps).
#
# Needs: dist/ built (npm run build), valgrind, cargo. SKIP_SANITIZERS=1
# skips. Usage: sanitize-ava.sh [spec.js ...]   (default: every spec)
# Specs run with --serial: under Valgrind a test that blocks the event
# loop (the sync ping-pong) starves its concurrent neighbours past their
# children's 10 s timeouts.
set -uo pipefail
cd "$(dirname "$0")/.."
[ -f package.json ] || cd ..   # works from the root or from scripts/

if [ "${SKIP_SANITIZERS:-0}" = 1 ]; then echo "skipped: SKIP_SANITIZERS=1"; exit 0; fi
if ! command -v valgrind >/dev/null; then echo "skipped: valgrind is not installed"; exit 0; fi

work=$(mktemp -d /tmp/sanitize-ava.XXXXXX)
logs="$work/logs"
mkdir -p "$logs"

# --- the pieces: suppressions, the node stand-in, and the fork redirect --
cat >"$work/node.supp" <<'EOF'
# V8's Oilpan (cppgc) scans the native stack conservatively during a full
# GC, reading every slot, initialised or not (seen with Node 20 in
# readme.spec and wait.spec).
{
   v8-cppgc-conservative-stack-scan-cond
   Memcheck:Cond
   fun:*IteratePointersInStack*
}
{
   v8-cppgc-conservative-stack-scan-value8
   Memcheck:Value8
   fun:*IteratePointersInStack*
}
EOF

children=(--trace-children=no)
if [ "${VALGRIND_CHILDREN:-0}" = 1 ]; then
  children=(--trace-children=yes "--trace-children-skip=*/sh,*/bash,*/dash,*/ldd,*/unshare,*/git,*/env,*/python3*")
fi
# --vex-guest-chase=no and --px-default=allregs-at-mem-access: our SIGBUS
# handler (src/core/probe) reads the faulting instruction's address and
# resumes a faulted copy, which needs the registers as the program left
# them; memcheck's defaults give a handler a translated block's state.
cat >"$work/node" <<EOF
#!/bin/sh
exec valgrind --tool=memcheck --error-exitcode=99 --leak-check=no \\
  --vex-guest-chase=no --px-default=allregs-at-mem-access \\
  --smc-check=all-non-file --num-callers=24 --child-silent-after-fork=yes \\
  ${children[*]@Q} --suppressions=$work/node.supp \\
  --log-file=$logs/%q{VALGRIND_SPEC}.%p.log \\
  $(command -v node) "\$@"
EOF
chmod +x "$work/node"

# child_process.fork() uses process.execPath: in ava's main process, point
# it at the stand-in. ava hands its execArgv (this --import) to the
# workers, where the variable is gone and the file does nothing.
cat >"$work/fork-via-valgrind.mjs" <<'EOF'
import process from 'node:process'
if (process.env.VALGRIND_WRAPPER) {
  process.execPath = process.env.VALGRIND_WRAPPER
  delete process.env.VALGRIND_WRAPPER
}
EOF

# --- the debug addon in place of the release one, restored on exit ------
echo "building the debug addon and the tests"
artifact=$(cargo build --lib --message-format=json-render-diagnostics |
  grep -o '"filenames":\["[^"]*\.so"' | grep -o '/[^"]*\.so' | tail -n 1)
if [ -z "$artifact" ] || [ ! -f "$artifact" ]; then echo "cargo build --lib failed" >&2; exit 1; fi
npm run --silent build:test || exit 1
binary=native/posix-shm.linux-x64-gnu.node
if [ ! -f "$binary" ]; then echo "no $binary: build the release addon first (npm run build)" >&2; exit 1; fi
# Swapped by rename, never by writing over the file: a process that still
# has the old one loaded keeps its own copy instead of crashing on a file
# changed under it. (The swap is needed at all because loading the debug
# build through NAPI_RS_NATIVE_LIBRARY_PATH would leak into the children of
# the loading tests, which check what happens when the binary is missing.)
cp -p "$binary" "$work/release.node" || exit 1
restore() { cp -p "$work/release.node" "$binary.restoring" && mv -f "$binary.restoring" "$binary"; }
trap restore EXIT
# ava runs in the background and is waited for, so a signal is handled at
# once (bash defers traps while a foreground child runs) and stops it too.
ava_pid=
trap '[ -z "$ava_pid" ] || kill "$ava_pid" 2>/dev/null; exit 130' INT TERM HUP
cp "$artifact" "$binary.debug" && mv -f "$binary.debug" "$binary" || exit 1

# --- run ------------------------------------------------------------------
if [ $# -gt 0 ]; then specs=("$@"); else specs=(build/__test__/*.spec.js); fi
status=0
total_start=$SECONDS
printf '\n%-26s %8s  %s\n' spec seconds result
for spec in "${specs[@]}"; do
  name=$(basename "$spec" .spec.js)
  start=$SECONDS
  VALGRIND_WRAPPER="$work/node" VALGRIND_SPEC="$name" \
    node --import "$work/fork-via-valgrind.mjs" node_modules/ava/entrypoints/cli.mjs \
    --serial --concurrency=1 --timeout=10m "$spec" >"$logs/$name.ava" 2>&1 &
  ava_pid=$!
  wait "$ava_pid"
  rc=$?
  ava_pid=
  result=$(grep -Eo '[0-9]+ tests? (passed|failed)|[0-9]+ (known failure|tests? skipped)' "$logs/$name.ava" | paste -sd, -)
  [ $rc -eq 0 ] || { status=1; result="$result; ava exit $rc"; }
  printf '%-26s %8d  %s\n' "$name" $((SECONDS - start)) "$result"
  [ $rc -eq 0 ] || sed -n '/✘/,$p' "$logs/$name.ava" | head -n 40
done
printf '%-26s %8d\n' total $((SECONDS - total_start))

# --- reports --------------------------------------------------------------
# Every error block memcheck wrote, from any worker (a worker ava killed
# cannot exit 99, so the logs are the record, not the exit codes).
errors=0
ours=0
for log in "$logs"/*.log; do
  [ -s "$log" ] || continue
  blocks=$(awk '
    /^==[0-9]+== [A-Z]/ && !/^==[0-9]+== (Memcheck|Copyright|Using|Command|Parent|HEAP|LEAK|ERROR SUMMARY|For |Use |Process terminating|Warning:)/ {
      if (block != "") print block "\n\f"; block = $0; next }
    /^==[0-9]+==  / { if (block != "") block = block "\n" $0; next }
    /^==[0-9]+== *$/ { if (block != "") { print block "\n\f"; block = "" } }
    END { if (block != "") print block "\n\f" }' "$log")
  [ -n "$blocks" ] || continue
  n=$(printf '%s' "$blocks" | grep -c $'\f')
  m=$(printf '%s' "$blocks" | awk 'BEGIN { RS = "\f" } /posix_shm|posix-shm|napi/ { n++ } END { print n + 0 }')
  errors=$((errors + n)); ours=$((ours + m))
  echo
  echo "=== $(basename "$log"): $n error(s), $m touching the addon"
  printf '%s\n' "$blocks" | tr -d '\f'
done
echo
echo "valgrind: $errors error(s) outside the suppressions, $ours touching the addon (logs: $logs)"
[ "$errors" -eq 0 ] || status=1
exit $status
