#!/usr/bin/env bash
# The fuzzing step of CI: a short, bounded cargo-fuzz run of every target in fuzz/.
#
# Stable Rust already runs the targets' bodies over their seeds and proptest-made inputs in
# `cargo test` (sdk/tests/fuzz_bodies.rs). This adds coverage-guided fuzzing, which needs
# nightly and cargo-fuzz: installed here when missing (measured on a 2-core machine: nightly
# with --profile minimal ~1.5 min, cargo-fuzz ~4 min, the sanitized build of the targets
# several minutes more; each later run only fuzzes).
#
# Usage: scripts/test-fuzz.sh [SECONDS_PER_TARGET]   (default 20; FUZZ_SECONDS also works)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-${FUZZ_SECONDS:-20}}"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  start=$SECONDS
  rustup toolchain install nightly --profile minimal
  echo "nightly installed in $((SECONDS - start)) s"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  start=$SECONDS
  cargo install cargo-fuzz --locked
  echo "cargo-fuzz installed in $((SECONDS - start)) s"
fi

scripts/fuzz.sh "$seconds"
