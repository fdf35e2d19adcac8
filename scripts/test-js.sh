#!/usr/bin/env bash
# scripts/test-js.sh: the npm package @pitchey/realtime, end to end.
#
#   1. installs what it needs (scripts/tools.sh: wasm target, wasm-bindgen-cli, binaryen,
#      chromium, the node modules of bindings-js from its package-lock.json);
#   2. builds the package (bindings-js/build.sh -> bindings-js/dist/) and the reference server;
#   3. type-checks bindings-js/ts-check (usage.ts, hooks.tsx) against dist/ with tsc --noEmit;
#   4. starts pitchey-mock-server on a free port (its own JWT_SECRET) and runs the browser
#      tests (bindings-js/tests/e2e/run.mjs: headless Chromium via playwright-core);
#   5. stops the server on exit, whatever happened.
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

JWT_SECRET="test-js-$(date +%s)-$RANDOM"
export JWT_SECRET
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Port 0: the server picks a free port and prints it in its banner.
"$SERVER_BIN" --host 127.0.0.1 --port 0 >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!
ADDR=""
for _ in $(seq 1 100); do
  ADDR="$(sed -n 's#^ *WebSocket: ws://\([^/]*\)/.*#\1#p' "$WORK/server.out" | head -n 1)"
  [ -n "$ADDR" ] && break
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "test-js: the server exited:" >&2
    cat "$WORK/server.err" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$ADDR" ]; then
  echo "test-js: no address in the server's banner" >&2
  exit 1
fi
echo "test-js: pitchey-mock-server on $ADDR"

USER_ID=7
TOKEN="$("$SERVER_BIN" token --user "$USER_ID")"

echo "test-js: browser tests (headless Chromium)"
PITCHEY_WS_URL="ws://$ADDR/ws" PITCHEY_HTTP_URL="http://$ADDR" PITCHEY_TOKEN="$TOKEN" \
  PITCHEY_USER="$USER_ID" node "$JS/tests/e2e/run.mjs"
