#!/usr/bin/env bash
# scripts/test-react.sh: the React example app (examples/react-app) end to end, in headless
# Chromium, against a real pitchey-mock-server.
#
#   1. tools (scripts/tools.sh): wasm target, wasm-bindgen-cli, binaryen, chromium;
#   2. the npm package: bindings-js/build.sh when bindings-js/dist is missing or older than
#      anything it is built from (bindings-js/src, react/, Cargo.toml, package.json, sdk/src);
#   3. the app: npm ci (from its package-lock.json; @pitchey/realtime is a file: dependency on
#      bindings-js/dist), tsc --noEmit and vite build (npm run build);
#   4. pitchey-mock-server on a free port (--port 0, not --demo: no random traffic) with a
#      JWT_SECRET made up for this run; the test mints tokens with its `token` subcommand;
#   5. examples/react-app/tests/e2e.mjs: vite preview + playwright-core; it also stops and
#      restarts the server (same port) for the reconnect test;
#   6. stops the server on exit, whatever happened.
#
# Env: CARGO_TARGET_DIR (default: the workspace's target/). Artifacts (a screenshot of the app)
# in examples/react-app/tests/artifacts/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JS="$ROOT/bindings-js"
APP="$ROOT/examples/react-app"
started=$SECONDS
# shellcheck source=tools.sh
source "$ROOT/scripts/tools.sh"

ensure_wasm_target
ensure_wasm_bindgen_cli
ensure_binaryen
ensure_chromium
ensure_node_tools "$JS"

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export CARGO_TARGET_DIR="$TARGET_DIR"

# dist is stale when any input is newer than its .wasm.
wasm="$JS/dist/pitchey_realtime_js_bg.wasm"
stale=""
if [ ! -f "$wasm" ] || [ ! -f "$JS/dist/react/index.js" ]; then
  stale="missing"
elif [ -n "$(find "$JS/src" "$JS/react" "$JS/Cargo.toml" "$JS/package.json" "$JS/build.sh" "$JS/short-names.mjs" "$JS/order-functions.mjs" "$JS/wasm-read.mjs" \
  "$ROOT/sdk/src" "$ROOT/sdk/Cargo.toml" "$ROOT/Cargo.lock" -newer "$wasm" -print -quit)" ]; then
  stale="stale"
fi
if [ -n "$stale" ]; then
  echo "test-react: bindings-js/dist is $stale: bindings-js/build.sh"
  "$JS/build.sh"
else
  echo "test-react: bindings-js/dist is up to date"
fi

echo "test-react: npm ci + build (examples/react-app)"
# npm ci deletes node_modules first: the file: dependency is linked again to the fresh dist.
npm --prefix "$APP" ci --no-audit --no-fund --loglevel=error
npm --prefix "$APP" run --silent build

echo "test-react: cargo build -p pitchey-mock-server"
(cd "$ROOT" && cargo build --quiet -p pitchey-mock-server)
SERVER_BIN="$TARGET_DIR/debug/pitchey-mock-server"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/pitchey-react.XXXXXX")"
# shellcheck source=server.sh
source "$ROOT/scripts/server.sh"
cleanup() {
  local rc=$?
  pitchey_server_stop "$rc" "$WORK"
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A secret for this run only: the server and the `token` subcommand both read JWT_SECRET.
JWT_SECRET="test-react-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
pitchey_server_start "$SERVER_BIN" "$WORK"

echo "test-react: browser tests (headless Chromium)"
PITCHEY_WS_URL="$PITCHEY_SERVER_WS_URL" PITCHEY_HTTP_URL="$PITCHEY_SERVER_HTTP_URL" PITCHEY_SERVER_BIN="$SERVER_BIN" \
  PITCHEY_SERVER_PID="$PITCHEY_SERVER_PID" node "$APP/tests/e2e.mjs"
echo "test-react: passed in $((SECONDS - started))s"
