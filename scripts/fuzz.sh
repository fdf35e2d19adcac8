#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ (needs nightly and cargo-fuzz; scripts/test-fuzz.sh
# installs both). Each target starts from its seeds (fuzz/seeds/TARGET, committed) and keeps
# what it finds in fuzz/corpus/TARGET (not committed); a crash leaves its input in
# fuzz/artifacts/TARGET and fails the script.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET  default 20
#   TARGET              default: every target (client_decode client_core server_decode server_handler)
# Prints, per target, the executions run and the corpus size.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(client_decode client_core server_decode server_handler)
fi

# One build for every target, its time shown apart from the runs'.
start=$SECONDS
cargo +nightly fuzz build
echo "fuzz targets built in $((SECONDS - start)) s"

status=0
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target"
  log="$(mktemp)"
  if cargo +nightly fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
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
