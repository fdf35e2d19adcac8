#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ (needs cargo-fuzz and the dated nightly
# $PITCHEY_NIGHTLY of scripts/tools.sh, or another by PITCHEY_NIGHTLY=...; scripts/test-fuzz.sh
# installs both). Each target starts from its seeds (fuzz/seeds/TARGET, committed) and keeps
# what it finds in fuzz/corpus/TARGET (not committed); a crash (a panic: a broken property or
# a bug) leaves its input in fuzz/artifacts/TARGET and fails the script.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET  default 20
#   TARGET              default: every target (client_decode client_core server_decode server_handler)
#   FUZZ_SANITIZER      default none; `address` for AddressSanitizer (see below)
# Prints, per target, the executions run and the corpus size.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/tools.sh
source scripts/tools.sh
nightly="+$PITCHEY_NIGHTLY"

seconds="${1:-20}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(client_decode client_core server_decode server_handler)
fi

# Build options, the same for `build` and `run` (`run` rebuilds when they differ).
# - No sanitizer by default: libFuzzer's coverage instrumentation (what guides the fuzzing)
#   and the panics that find our bugs do not need one. AddressSanitizer finds memory errors,
#   which safe Rust cannot make: our crates have no `unsafe` outside the server binary's
#   allocator module (not linked here), so it would check only the dependencies' unsafe code,
#   at a cost: measured cold on 2 cores, the build takes 354 s instead of 251 s and the
#   targets run 5-7x fewer executions per second. FUZZ_SANITIZER=address when a
#   dependency's unsafe code is suspect.
# - cargo-fuzz's default profile: release optimisations with debug assertions and overflow
#   checks, so that an overflow is a crash too.
# - A target dir of its own: nightly and the instrumentation flags would only evict the
#   stable build's artifacts from a shared one.
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
  target_dir="$CARGO_TARGET_DIR/fuzz"
else
  target_dir="fuzz/target"
fi
options=(--sanitizer "${FUZZ_SANITIZER:-none}" --target-dir "$target_dir")

# fuzz/ is a workspace of its own with its own lock file (committed): without this check a
# stale one would be rewritten silently and the build would pick new versions.
if ! cargo "$nightly" metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null; then
  echo "fuzz/Cargo.lock is out of date: run 'cargo update --workspace' in fuzz/ and commit it" >&2
  exit 1
fi

# One build for every target, its time shown apart from the runs'.
start=$SECONDS
cargo "$nightly" fuzz build "${options[@]}"
echo "fuzz targets built in $((SECONDS - start)) s"

status=0
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target"
  log="$(mktemp)"
  if cargo "$nightly" fuzz run "${options[@]}" "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
      -max_total_time="$seconds" -print_final_stats=1 -max_len=4096 -timeout=10 >"$log" 2>&1; then
    result=ok
  else
    result=FAILED
    status=1
    tail -n 60 "$log"
  fi
  execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
  printf '%-16s %s: %s execs in %ss, corpus %s inputs\n' "$target" "$result" "$execs" "$seconds" \
    "$(find "fuzz/corpus/$target" -type f | wc -l)"
  rm -f "$log"
done
exit "$status"
