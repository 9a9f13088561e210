#!/usr/bin/env bash
# Builds the worker into build/ (worker-build, release) and copies the browser SDK into static/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -f .toolchain/env ] || bash scripts/setup.sh
# shellcheck disable=SC1091
source .toolchain/env

mkdir -p static/vendor
spa=node_modules/@auth0/auth0-spa-js/dist/auth0-spa-js.production.esm.js
[ -f "$spa" ] || { echo "[build] $spa is missing: run 'npm ci'." >&2; exit 1; }
cp "$spa" static/vendor/auth0-spa-js.production.esm.js

echo "[build] worker-build --release"
worker-build --release "$@"
ls -l build/index_bg.wasm | awk '{print "[build] wasm: " $5 " bytes"}'
