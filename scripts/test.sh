#!/usr/bin/env bash
# Every test: formatting, clippy on the wasm target, native unit tests, then the built worker
# in Miniflare, the Action, the stand-ins, and the browser end-to-end test.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
# shellcheck disable=SC1091
source .toolchain/env

section() { printf '\n\033[1m== %s ==\033[0m\n' "$*"; }

section "rustfmt"
$FMT_CMD --check

section "clippy (wasm32 and native tests, warnings denied)"
$CLIPPY_CMD --quiet --target wasm32-unknown-unknown -- -D warnings
# The tests run natively; their dev-dependencies do not build for wasm32.
$CLIPPY_CMD --quiet --all-targets -- -D warnings

section "native unit tests"
"$CARGO" test --quiet

section "build"
bash scripts/build.sh

section "integration tests (Node test runner)"
node --test --test-concurrency=1 tests/*.test.mjs
