#!/usr/bin/env bash
# Installs, once per machine, everything the build and the tests need, and caches it.
#
# Idempotent: a second run finds each piece in place and installs nothing. It writes
# `.toolchain/env`, which the other scripts source to get the right compiler, Node and tools
# on PATH. Steps print what they do; a prerequisite it cannot install stops with one message.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Tools shared by every clone on this machine (a fresh clone, CI) live in one cache folder.
cache="${AUTH0_VOICEIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/auth0-voiceit-worker}"
tools="$cache/tools"
mkdir -p "$tools/bin" .toolchain

WORKER_BUILD_VERSION=0.8.7
WASM_TARGET=wasm32-unknown-unknown

step() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
fail() {
  printf '\033[1;31m[setup] %s\033[0m\n' "$*" >&2
  exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif have sudo; then sudo "$@"; else return 1; fi
}

apt_updated=""
apt_install() {
  have apt-get || return 1
  if [ -z "$apt_updated" ]; then
    step "apt-get update"
    as_root apt-get update -qq || return 1
    apt_updated=1
  fi
  step "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# --- Node 22 and the npm packages -------------------------------------------------------------

node_major() { "$1" -e 'process.stdout.write(process.versions.node.split(".")[0])' 2>/dev/null; }

have npm || fail "npm is missing: install Node.js (20 or newer) with npm, then run this again."

lock_hash=$(sha256sum package-lock.json | cut -c1-16)
if [ ! -f node_modules/.installed-"$lock_hash" ]; then
  step "npm ci (wrangler, miniflare, playwright-core, auth0-spa-js, Node 22)"
  npm ci --no-audit --no-fund --loglevel=error
  touch node_modules/.installed-"$lock_hash"
else
  step "npm packages: up to date"
fi

node_bin=""
for candidate in "$root/node_modules/.bin/node" "$(command -v node || true)"; do
  [ -n "$candidate" ] && [ -x "$candidate" ] || continue
  if [ "$(node_major "$candidate")" -ge 22 ]; then
    node_bin=$candidate
    break
  fi
done
[ -n "$node_bin" ] || fail "Node 22 or newer is needed (wrangler refuses older ones) and none was found: install Node 22."
step "node: $("$node_bin" --version) at $node_bin"

# --- Rust that can build wasm32 ---------------------------------------------------------------

# Picks the first cargo/rustc pair whose sysroot holds a wasm32 standard library.
wasm_ready() {
  local rustc=$1
  [ -x "$rustc" ] || return 1
  [ -d "$("$rustc" --print target-libdir --target "$WASM_TARGET" 2>/dev/null)" ] || return 1
  ls "$("$rustc" --print target-libdir --target "$WASM_TARGET")"/libstd-*.rlib >/dev/null 2>&1
}

# AUTH0_VOICEIT_RUST=debian skips rustup, to exercise the fallback on a machine that has both.
rust_bin=""
candidates=("$HOME/.cargo/bin" /usr/bin)
[ "${AUTH0_VOICEIT_RUST:-}" = debian ] && candidates=(/usr/bin)
for dir in "${candidates[@]}"; do
  if wasm_ready "$dir/rustc" && [ -x "$dir/cargo" ]; then
    rust_bin=$dir
    break
  fi
done

if [ -z "$rust_bin" ] && have rustup && [ "${AUTH0_VOICEIT_RUST:-}" != debian ]; then
  step "rustup target add $WASM_TARGET (60 s at most)"
  if timeout 60 rustup target add "$WASM_TARGET" >/dev/null 2>&1 && wasm_ready "$HOME/.cargo/bin/rustc"; then
    rust_bin="$HOME/.cargo/bin"
  else
    step "rustup could not add the target; using Debian's compiler instead"
  fi
fi

if [ -z "$rust_bin" ]; then
  # Debian's newer compiler ships its standard library source, so the wasm32 std can be built
  # here once and installed into its sysroot, after which it is an ordinary installed target.
  if [ ! -x /usr/bin/rustc ] || [ ! -d /usr/lib/rustlib/src/rust/library ] || [ ! -x /usr/lib/llvm-22/bin/lld ]; then
    apt_install rustc-web cargo-web rust-web-src lld-22 ||
      fail "No Rust with a wasm32 target: run 'rustup target add $WASM_TARGET', or install Debian's rustc-web cargo-web rust-web-src lld-22."
  fi
  sysroot=$(/usr/bin/rustc --print sysroot)
  host=$(/usr/bin/rustc -vV | sed -n 's/^host: //p')
  linker_dir="$sysroot/lib/rustlib/$host/bin"
  if [ ! -e "$linker_dir/rust-lld" ]; then
    step "linking rust-lld to lld-22"
    as_root mkdir -p "$linker_dir"
    as_root ln -sf /usr/lib/llvm-22/bin/lld "$linker_dir/rust-lld"
  fi
  step "building the wasm32 standard library from source (about a minute, once per machine)"
  std_crate="$cache/wasm-std"
  mkdir -p "$std_crate/src"
  printf '[package]\nname = "wasm_std_builder"\nversion = "0.0.0"\nedition = "2021"\n[lib]\ncrate-type = ["cdylib"]\n[profile.release]\npanic = "abort"\n' >"$std_crate/Cargo.toml"
  printf '#![allow(unused)]\n' >"$std_crate/src/lib.rs"
  (cd "$std_crate" && RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc /usr/bin/cargo build -q --release \
    --target "$WASM_TARGET" -Zbuild-std=std,panic_abort)
  target_lib="$sysroot/lib/rustlib/$WASM_TARGET/lib"
  as_root mkdir -p "$target_lib"
  find "$std_crate/target/$WASM_TARGET/release/deps" -name 'lib*.rlib' ! -name 'libwasm_std_builder*' \
    -exec cp {} "$target_lib/" \; 2>/dev/null || as_root find "$std_crate/target/$WASM_TARGET/release/deps" \
    -name 'lib*.rlib' ! -name 'libwasm_std_builder*' -exec cp {} "$target_lib/" \;
  wasm_ready /usr/bin/rustc || fail "The wasm32 standard library did not install into $target_lib."
  rust_bin=/usr/bin
fi
step "rust: $("$rust_bin/rustc" --version) with $WASM_TARGET"

# --- clippy and rustfmt -----------------------------------------------------------------------

clippy_cmd=""
if [ "$rust_bin" = /usr/bin ]; then
  [ -x /usr/bin/clippy-driver ] || apt_install rust-web-clippy || true
  [ -x /usr/bin/clippy-driver ] && clippy_cmd="/usr/bin/cargo clippy"
else
  "$rust_bin/cargo" clippy --version >/dev/null 2>&1 && clippy_cmd="$rust_bin/cargo clippy"
fi
[ -n "$clippy_cmd" ] || fail "clippy is missing: 'rustup component add clippy' (or Debian's rust-web-clippy)."
fmt_cmd=""
for c in "$HOME/.cargo/bin/cargo" "$rust_bin/cargo"; do
  if [ -x "$c" ] && "$c" fmt --version >/dev/null 2>&1; then
    fmt_cmd="$c fmt"
    break
  fi
done
[ -n "$fmt_cmd" ] || fail "rustfmt is missing: 'rustup component add rustfmt'."

# --- worker-build and wasm-bindgen ------------------------------------------------------------

cargo_install() { # name version binary
  local name=$1 version=$2 bin=$3
  local dest="$tools/$name-$version"
  if [ -x "$dest/bin/$bin" ]; then
    step "$name $version: cached"
  else
    step "cargo install $name $version (several minutes, once per machine)"
    # Not --locked: one locked dependency of wasm-bindgen-cli is missing from the registry.
    PATH="$rust_bin:$PATH" "$rust_bin/cargo" install -q "$name" --version "=$version" --root "$dest.partial"
    rm -rf "$dest"
    mv "$dest.partial" "$dest"
  fi
  ln -sf "$dest/bin/$bin" "$tools/bin/$bin"
}

[ -f Cargo.lock ] || (PATH="$rust_bin:$PATH" "$rust_bin/cargo" generate-lockfile -q)
bindgen_version=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
[ -n "$bindgen_version" ] || fail "Cargo.lock names no wasm-bindgen version."
cargo_install worker-build "$WORKER_BUILD_VERSION" worker-build
cargo_install wasm-bindgen-cli "$bindgen_version" wasm-bindgen

# --- the system packages the browser test needs -----------------------------------------------

if [ "${SKIP_BROWSER_SETUP:-}" != 1 ]; then
  missing=()
  have chromium || missing+=(chromium)
  have ffmpeg || missing+=(ffmpeg)
  have espeak-ng || missing+=(espeak-ng)
  if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}" || fail "The browser test needs ${missing[*]}: install them (Debian: apt-get install ${missing[*]})."
  fi
fi

# --- what the other scripts read --------------------------------------------------------------

esbuild_bin="$root/node_modules/@esbuild/linux-x64/bin/esbuild"
cat >.toolchain/env <<EOF
# Written by scripts/setup.sh; sourced by the other scripts.
export PATH="$(dirname "$node_bin"):$rust_bin:$tools/bin:\$PATH"
export CARGO="$rust_bin/cargo"
export RUSTC="$rust_bin/rustc"
export WASM_BINDGEN_BIN="$tools/bin/wasm-bindgen"
$([ -x "$esbuild_bin" ] && echo "export ESBUILD_BIN=\"$esbuild_bin\"")
export CLIPPY_CMD="$clippy_cmd"
export FMT_CMD="$fmt_cmd"
EOF
step "ready (tools cached in $cache)"
