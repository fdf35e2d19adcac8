#!/usr/bin/env bash
# The fuzzing step of the test command (scripts/test.sh): a short, bounded cargo-fuzz run of
# every target in fuzz/. A crash fails it.
#
# Stable Rust already runs the targets' bodies over their seeds and proptest-made inputs in
# `cargo test` (sdk/tests/fuzz_bodies.rs). This adds coverage-guided fuzzing, which needs
# nightly and cargo-fuzz: installed here when missing, skipped when present. Measured on a
# 2-core machine (README, "Fuzzing"): a nightly with --profile minimal 15 s, cargo-fuzz from
# source 48 s, the targets' cold build 4.5 min; a later run only rebuilds what changed.
#
# Usage: scripts/test-fuzz.sh [SECONDS_PER_TARGET]   (default 20; FUZZ_SECONDS also works)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-${FUZZ_SECONDS:-20}}"

# The project's dated nightly ($PITCHEY_NIGHTLY), which the npm package's build uses too: one
# toolchain to install, and a nightly that does not move under CI.
# shellcheck source=scripts/tools.sh
source scripts/tools.sh
ensure_nightly
if ! cargo fuzz --version >/dev/null 2>&1; then
  start=$SECONDS
  # From crates.io, with the versions of its own lock file; built with the stable toolchain.
  cargo install cargo-fuzz --version 0.13.2 --locked
  echo "cargo-fuzz installed in $((SECONDS - start)) s"
fi

scripts/fuzz.sh "$seconds"
