#!/usr/bin/env bash
# Type-checks and lints the native core for every triple in package.json's
# "napi.targets" (seven: Linux gnu and musl on x86_64 and aarch64, macOS on
# x86_64 and arm64, FreeBSD x86_64): `cargo check` and
# `cargo clippy -- -D warnings`, both with --all-targets. Nothing is linked
# or run: macOS and FreeBSD have no SDK/sysroot here. Any error or warning
# fails the script.
#
# Pins Debian's Rust 1.96 toolchain (rustc-web, cargo-web, rust-web-src,
# rust-web-clippy 1.96.0+dfsg1-1~deb12u2 from bookworm-security when
# written), not rustup's: rust-web-src ships std's source, so with
# RUSTC_BOOTSTRAP=1 `-Zbuild-std=std,panic_abort` builds std for each triple
# (std's own dependencies come from crates.io, locked by std's Cargo.lock in
# rust-web-src). The packages are installed with apt-get if missing or not
# 1.96 (root, or sudo, needed then). CHECK_TARGETS_RUST=1.97 changes the pin.
#
# The target folder lives outside the clone, in
# ${XDG_CACHE_HOME:-$HOME/.cache}/posix-shm/check-targets (CHECK_TARGETS_DIR
# overrides): the first run builds std seven times (8 min on 2 cores here,
# 2.4 GB; it fetches std's dependencies from crates.io once), a warm run
# only re-checks this crate: 3 s with nothing changed, 12 s after an edit.
# Arguments, if any, replace the list of triples.
set -euo pipefail
cd "$(dirname "$0")/.."

release=${CHECK_TARGETS_RUST:-1.96}
packages=(rustc-web cargo-web rust-web-src rust-web-clippy)
target_dir=${CHECK_TARGETS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/posix-shm/check-targets}
jobs=${CARGO_BUILD_JOBS:-2}

if [ $# -gt 0 ]; then
  targets=("$@")
else
  read -r -a targets < <(node -p "require('./package.json').napi.targets.join(' ')")
fi

# The Debian packages, at $release, installed unless they are.
have_toolchain() {
  local package version
  for package in "${packages[@]}"; do
    version=$(dpkg-query -W -f='${Version}' "$package" 2>/dev/null) || return 1
    case $version in "$release".*) ;; *) return 1 ;; esac
  done
  [ -d /usr/lib/rustlib/src/rust/library/std ] && [ -x /usr/bin/cargo-clippy ]
}
if ! have_toolchain; then
  if ! command -v apt-get >/dev/null; then
    echo "check-targets: needs Debian's ${packages[*]} $release (apt-get not found)" >&2
    exit 1
  fi
  sudo=
  [ "$(id -u)" = 0 ] || sudo=sudo
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  echo "check-targets: installing ${packages[*]} from ${codename}-security" >&2
  $sudo apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -t "${codename}-security" "${packages[@]}"
  if ! have_toolchain; then
    echo "check-targets: apt-get installed $(dpkg-query -W -f='${Version}' rustc-web 2>/dev/null || echo nothing)," \
      "not Rust $release: set CHECK_TARGETS_RUST to the release it serves (and fix what it finds)" >&2
    exit 1
  fi
fi

# Debian's tools, whatever rustup puts first on the PATH. cargo runs the
# cargo-clippy in $CARGO_HOME/bin (rustup's proxy) before the PATH's, so
# clippy is called by its full path.
export PATH=/usr/bin:$PATH RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc CARGO=/usr/bin/cargo
export RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$target_dir
unset RUSTUP_TOOLCHAIN RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
echo "check-targets: $(rustc --version), $(cargo --version), $(/usr/bin/clippy-driver --version)"
echo "check-targets: target folder $target_dir"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
for target in "${targets[@]}"; do
  # Per-triple flags (the same for check and clippy, so std is built once per
  # triple): warnings are errors in this crate (dependencies and std cap
  # their lints); musl as `napi build` does it, or cargo drops the cdylib.
  var=CARGO_TARGET_$(printf '%s' "$target" | tr 'a-z-' 'A-Z_')_RUSTFLAGS
  flags="-D warnings"
  case $target in *-musl) flags="$flags -C target-feature=-crt-static" ;; esac
  export "$var=$flags"
  common=(-j "$jobs" -Zbuild-std=std,panic_abort --target "$target" --all-targets)
  start=$SECONDS
  printf '\n--- %s: cargo check\n' "$target"
  cargo check "${common[@]}" 2>&1 | tee -a "$log" || status=1
  printf -- '--- %s: cargo clippy -- -D warnings\n' "$target"
  /usr/bin/cargo-clippy clippy "${common[@]}" -- -D warnings 2>&1 | tee -a "$log" || status=1
  printf -- '--- %s: %ss\n' "$target" $((SECONDS - start))
  unset "$var"
done

# Warnings that are not lints (so not turned into errors), from rustc or cargo.
if grep -q '^warning' "$log"; then
  echo "check-targets: warnings:" >&2
  grep '^warning' "$log" | sort | uniq -c >&2
  status=1
fi
if [ "$status" != 0 ]; then
  echo "check-targets: errors or warnings above" >&2
fi
exit "$status"
