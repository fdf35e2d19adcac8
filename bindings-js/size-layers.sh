#!/usr/bin/env bash
# bindings-js/size-layers.sh: where the package's gzipped bytes go, layer by layer (the
# core, the protocol's readers and writers, the async client, the bindings...), as a
# Markdown table. Builds the package as `build.sh` does, keeping aside the optimised module
# with its function names (PITCHEY_JS_NAMES_DIR), then has size-layers.mjs measure each
# layer's share of the gzipped module in the shipped function order. README "Size" has
# today's table. Arguments, if any, are case-insensitive regexes of Rust function names,
# each measured as one more row (`size-layers.sh 'draft|merge'`: what the drafts cost).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NAMES_DIR="$(mktemp -d)"
trap 'rm -rf "$NAMES_DIR"' EXIT
build() {
  "$HERE/build.sh" >"$NAMES_DIR/build.log" 2>&1 || { cat "$NAMES_DIR/build.log"; exit 1; }
  grep "size:" "$NAMES_DIR/build.log" || echo "size-layers.sh: build.sh printed no size"
}
PITCHEY_JS_NAMES_DIR="$NAMES_DIR" build
echo
node "$HERE/size-layers.mjs" "$NAMES_DIR/names.wasm" "$NAMES_DIR/ranked.wasm" "$NAMES_DIR/shipped.wasm" \
  "$HERE/dist/pitchey_realtime_js_bg.wasm" "$@"
# dist/ back to the package as build.sh makes it (the names build's differs by a few bytes).
echo
build
