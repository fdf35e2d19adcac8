#!/usr/bin/env bash
# scripts/server.sh: start and stop the reference server for a test script (test-web.sh,
# test-mobile.sh, test-js.sh, test-react.sh), so that the banner parsing and the cleanup are
# written once.
#
# A library: `source scripts/server.sh`, then
#   pitchey_server_start BIN WORKDIR [ARG...]
#                                      exports JWT_SECRET (made up for this run, unless set) and
#                                      starts BIN (with ARGs, e.g. --seed-compatible) on
#                                      127.0.0.1, a port the OS picks; waits for its
#                                      banner and sets PITCHEY_SERVER_PID, PITCHEY_SERVER_WS_URL
#                                      (ws://HOST:PORT/ws) and PITCHEY_SERVER_HTTP_URL. Logs go to
#                                      WORKDIR/server.out and server.err.
#   pitchey_server_stop RC WORKDIR     stops it; when RC is not 0, prints the server log's tail.
# RUST_LOG for the server is PITCHEY_SERVER_LOG (default warn).

PITCHEY_SERVER_PID=""

pitchey_server_start() {
  local bin="$1" workdir="$2"
  shift 2
  if [ -z "${JWT_SECRET:-}" ]; then
    JWT_SECRET="tests-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  fi
  export JWT_SECRET
  RUST_LOG="${PITCHEY_SERVER_LOG:-warn}" "$bin" --host 127.0.0.1 --port 0 "$@" \
    >"$workdir/server.out" 2>"$workdir/server.err" &
  PITCHEY_SERVER_PID=$!
  # The banner says "  WebSocket: ws://127.0.0.1:PORT/ws?token=<JWT>" once it listens.
  PITCHEY_SERVER_WS_URL=""
  for _ in $(seq 1 300); do
    PITCHEY_SERVER_WS_URL="$(sed -n 's|^ *WebSocket: \(ws://[^?]*\)?token=.*|\1|p' "$workdir/server.out" | head -n 1)"
    [ -n "$PITCHEY_SERVER_WS_URL" ] && break
    if ! kill -0 "$PITCHEY_SERVER_PID" 2>/dev/null; then
      printf 'the server exited before printing its address\n' >&2
      return 1
    fi
    sleep 0.1
  done
  [ -n "$PITCHEY_SERVER_WS_URL" ] || { printf 'no address in the server banner after 30 s\n' >&2; return 1; }
  PITCHEY_SERVER_HTTP_URL="$(sed -n 's|^ *HTTP: *\(http://[^ ]*\)/api/ws/health.*|\1|p' "$workdir/server.out" | head -n 1)"
  [ -n "$PITCHEY_SERVER_HTTP_URL" ] || { printf 'no HTTP address in the server banner\n' >&2; return 1; }
  printf 'server: %s (HTTP %s), pid %s\n' "$PITCHEY_SERVER_WS_URL" "$PITCHEY_SERVER_HTTP_URL" "$PITCHEY_SERVER_PID"
}

pitchey_server_stop() {
  local rc="$1" workdir="$2"
  if [ -n "$PITCHEY_SERVER_PID" ] && kill -0 "$PITCHEY_SERVER_PID" 2>/dev/null; then
    kill "$PITCHEY_SERVER_PID" 2>/dev/null || true
    wait "$PITCHEY_SERVER_PID" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ -s "$workdir/server.err" ]; then
    printf -- '--- last lines of the server log ---\n' >&2
    tail -n 30 "$workdir/server.err" >&2
  fi
}
