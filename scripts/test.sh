#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what is missing, skips what is there.
# Usage: scripts/test.sh            (the README's test command; .ci/run calls exactly this)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets -- -D warnings

step "the core builds for the browser without tokio (wasm32-unknown-unknown, no default features)"
cargo check -p pitchey-realtime --no-default-features --target wasm32-unknown-unknown
cargo clippy -p pitchey-realtime --no-default-features --features web --target wasm32-unknown-unknown -- -D warnings
cargo clippy -p pitchey-realtime-js --target wasm32-unknown-unknown -- -D warnings

step "feature combinations: the async client without a platform, the native platform without TLS"
cargo check -p pitchey-realtime --no-default-features --features client
cargo check -p pitchey-realtime --no-default-features --features native

step "redis-server (the reference server's several-instance tests start their own on a free loopback port)"
# shellcheck source=scripts/tools.sh
source scripts/tools.sh
ensure_redis

step "tests: protocol, sans-IO core simulations, native client and reference server over loopback"
cargo test --workspace --all-targets
cargo test --workspace --doc

step "interop: the reference server driven by a client we did not write (Python websockets)"
python3 -c "import websockets" 2>/dev/null || python3 -m pip install --quiet "websockets==17.4"
cargo build -p pitchey-mock-server
python3 mock-server/interop/python_client.py "${CARGO_TARGET_DIR:-target}/debug/pitchey-mock-server"

step "browser platform: sdk/tests/web_client.rs in headless Chromium against the reference server"
scripts/test-web.sh

step "npm package @pitchey/realtime: tsc --noEmit and end-to-end tests in headless Chromium"
scripts/test-js.sh

step "React example app (examples/react-app): the hooks driven end to end in headless Chromium"
scripts/test-react.sh

step "mobile SDK (bindings-mobile): Rust tests, Kotlin on a JVM and Python against the reference server, Swift sources generated"
scripts/test-mobile.sh

step "fuzzing: a short coverage-guided cargo-fuzz run of every target in fuzz/ (nightly and cargo-fuzz installed if missing)"
# FUZZ_SECONDS per target (default 15); a crash fails the test command, its input in fuzz/artifacts/.
scripts/test-fuzz.sh "${FUZZ_SECONDS:-15}"
