#!/usr/bin/env bash
# npm start: builds, then runs the worker with `wrangler dev` on http://127.0.0.1:8787.
# With .dev.vars (real credentials) it talks to the real Auth0 and VoiceIt; without it, the
# local sandbox starts stand-ins for both and points the worker at them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
# shellcheck disable=SC1091
source .toolchain/env
port=${PORT:-8787}

if [ -f .dev.vars ]; then
  echo "[start] Mode: REAL SERVICES (.dev.vars found). Open http://127.0.0.1:$port/"
  exec wrangler dev --ip 127.0.0.1 --port "$port" --show-interactive-dev-session=false
else
  echo "[start] No .dev.vars: starting the local sandbox (see README to use real services)."
  exec node scripts/sandbox.mjs
fi
