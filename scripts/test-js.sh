#!/usr/bin/env bash
# scripts/test-js.sh: the npm package @pitchey/realtime, end to end.
#
#   1. installs what it needs (scripts/tools.sh: wasm target, wasm-bindgen-cli, binaryen,
#      chromium, the node modules of bindings-js from its package-lock.json);
#   2. builds the package (bindings-js/build.sh -> bindings-js/dist/) and the reference server;
#   3. type-checks bindings-js/ts-check (usage.ts, hooks.tsx) against dist/ with tsc --noEmit;
#   4. starts pitchey-mock-server twice on free ports (one JWT_SECRET of its own;
#      scripts/server.sh), once as itself and once with --seed-compatible (a server without
#      our protocol additions), and runs the browser tests (bindings-js/tests/e2e/run.mjs:
#      headless Chromium via playwright-core);
#   5. stops the servers on exit, whatever happened.
#
# Env: CARGO_TARGET_DIR (default: the workspace's target/).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JS="$ROOT/bindings-js"
# shellcheck source=tools.sh
source "$ROOT/scripts/tools.sh"

ensure_wasm_target
ensure_wasm_bindgen_cli
ensure_binaryen
ensure_chromium
ensure_node_tools "$JS"

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export CARGO_TARGET_DIR="$TARGET_DIR"

"$JS/build.sh"

echo "test-js: tsc --noEmit (bindings-js/ts-check)"
rm -rf "$JS/ts-check/node_modules"
mkdir -p "$JS/ts-check/node_modules/@pitchey"
# A copy, as npm would install it (a symlink would resolve back into the sources).
cp -R "$JS/dist" "$JS/ts-check/node_modules/@pitchey/realtime"
"$JS/node_modules/.bin/tsc" -p "$JS/ts-check/tsconfig.json"

echo "test-js: cargo build -p pitchey-mock-server"
(cd "$ROOT" && cargo build --quiet -p pitchey-mock-server)
SERVER_BIN="$TARGET_DIR/debug/pitchey-mock-server"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/pitchey-js.XXXXXX")"
# shellcheck source=server.sh
source "$ROOT/scripts/server.sh"
SEED_PID=""
cleanup() {
  local rc=$?
  pitchey_server_stop "$rc" "$WORK"
  if [ -n "$SEED_PID" ]; then
    PITCHEY_SERVER_PID="$SEED_PID" pitchey_server_stop "$rc" "$WORK/seed"
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A secret for this run only: the server and the `token` subcommand both read JWT_SECRET.
JWT_SECRET="test-js-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
# A second server that behaves like the seed backend (no ack, seq, subscribe or draft
# conflicts), same secret: the package must work against a server without our additions.
mkdir -p "$WORK/seed"
pitchey_server_start "$SERVER_BIN" "$WORK/seed" --seed-compatible
SEED_PID="$PITCHEY_SERVER_PID"
SEED_WS_URL="$PITCHEY_SERVER_WS_URL"
SEED_HTTP_URL="$PITCHEY_SERVER_HTTP_URL"
pitchey_server_start "$SERVER_BIN" "$WORK"

USER_ID=7
TOKEN="$("$SERVER_BIN" token --user "$USER_ID")"

echo "test-js: browser tests (headless Chromium)"
PITCHEY_WS_URL="$PITCHEY_SERVER_WS_URL" PITCHEY_HTTP_URL="$PITCHEY_SERVER_HTTP_URL" PITCHEY_TOKEN="$TOKEN" \
  PITCHEY_SEED_WS_URL="$SEED_WS_URL" PITCHEY_SEED_HTTP_URL="$SEED_HTTP_URL" \
  PITCHEY_USER="$USER_ID" node "$JS/tests/e2e/run.mjs"
