#!/usr/bin/env bash
# `npm run bench`: the built worker under workerd against the local stand-ins, beside its floors.
# Prints the tables and writes bench-output/latest.json and bench-output/latest.md. Builds the
# worker only when build/ has none; after a change, run `npm run build` first.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# The benchmark needs no browser.
SKIP_BROWSER_SETUP=1 bash scripts/setup.sh
# shellcheck disable=SC1091
source .toolchain/env

if [ ! -f build/index.js ] || [ ! -f build/index_bg.wasm ]; then
  bash scripts/build.sh
fi

# wrk is the load generator for the GET cases when it can be had; otherwise a Node loader.
if ! command -v wrk >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "[bench] apt-get install wrk"
  { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1; }; } ||
    echo "[bench] wrk is not available; the Node loader will do"
fi

exec node bench/run.mjs "$@"
