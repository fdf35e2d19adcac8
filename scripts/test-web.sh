#!/usr/bin/env bash
# scripts/test-web.sh: the browser platform (sdk/src/transport/web.rs) and the client on it, in
# headless Chromium, against the real reference server (sdk/tests/web_client.rs).
#
# 1. installs what is missing (wasm32 target, wasm-bindgen-cli matching Cargo.lock, chromium +
#    chromedriver; see scripts/tools.sh);
# 2. builds pitchey-mock-server and starts it on a port the OS picks (--port 0; the address is
#    read from its banner), with a JWT_SECRET made up for this run;
# 3. mints tokens with the server's `token` subcommand (same secret) and hands the URLs and
#    tokens to the tests at compile time (PITCHEY_TEST_*: a wasm test cannot read the
#    environment when it runs in the browser);
# 4. runs the tests through wasm-bindgen-test-runner (.cargo/config.toml) and stops the server.
#
# Usage: scripts/test-web.sh [extra args for the test binary, e.g. a test name filter]
# Honours CARGO_TARGET_DIR. WASM_BINDGEN_TEST_TIMEOUT (seconds for the whole browser run,
# default here 180) bounds a hung run.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

step() { printf '\n==> %s\n' "$*"; }

# shellcheck source=scripts/tools.sh
source scripts/tools.sh
step "tools"
ensure_wasm_target
ensure_wasm_bindgen_cli
ensure_chromium

step "reference server"
cargo build -p pitchey-mock-server
server_bin="${CARGO_TARGET_DIR:-target}/debug/pitchey-mock-server"

workdir="$(mktemp -d "${TMPDIR:-/tmp}/pitchey-web-tests.XXXXXX")"
# shellcheck source=scripts/server.sh
source scripts/server.sh
cleanup() {
  local rc=$?
  pitchey_server_stop "$rc" "$workdir"
  rm -rf "$workdir"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A secret for this run only: the server and the `token` subcommand both read JWT_SECRET.
JWT_SECRET="web-tests-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
pitchey_server_start "$server_bin" "$workdir"
ws_url="$PITCHEY_SERVER_WS_URL"
http_url="$PITCHEY_SERVER_HTTP_URL"

mint() { "$server_bin" token --ttl-secs 7200 "$@"; }
export PITCHEY_TEST_WS_URL="$ws_url"
export PITCHEY_TEST_HTTP_URL="$http_url"
PITCHEY_TEST_ADMIN_TOKEN="$(mint --user 999 --admin --username admin)"
export PITCHEY_TEST_ADMIN_TOKEN
for user in $(seq 1 12); do
  export "PITCHEY_TEST_TOKEN_USER$user=$(mint --user "$user" --username "web$user")"
done

step "browser tests (headless Chromium)"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-180}"
cargo test -p pitchey-realtime --no-default-features --features web \
  --target wasm32-unknown-unknown --test web_client -- "$@"

printf '\nweb tests passed in %ss\n' "$((SECONDS - started))"
