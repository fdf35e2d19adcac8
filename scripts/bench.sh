#!/usr/bin/env bash
# scripts/bench.sh: every benchmark of BENCHMARKS.md, each against its peer in the same run.
#
#   scripts/bench.sh            full run: fan-out at 1k/5k/10k, idle memory at 10k, reconnect
#                               storm under 5k SDK clients, memory after 10k connect/disconnect
#                               (3 cycles), sdk-vs-bare; JSON + SVG into bench/results/
#   scripts/bench.sh --quick    smoke run at 200 connections (a CI could run it); into
#                               bench/results/quick/
#   scripts/bench.sh --profile  also a `perf record` of the reference server during the 10k
#                               burst and a heaptrack of it at 10k idle connections, into
#                               bench/results/profile/ (a separate run: profiling perturbs)
#
# Not part of scripts/test.sh: benchmarks are never timed tests.
#
# Placement: the load generator on core 0, each server on core 1 (`taskset`, done by the load
# generator), and, when root, everything under `chrt -r 10` (SCHED_RR, inherited by the
# servers) so that other processes on the machine (compiles) cannot take the CPU mid-run.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=full
case "${1:-}" in
  --quick) MODE=quick ;;
  --profile) MODE=profile ;;
  "") ;;
  *) echo "usage: scripts/bench.sh [--quick|--profile]" >&2; exit 2 ;;
esac

step() { printf '\n==> %s\n' "$*"; }

step "tools: npm ci for the Node peer"
# shellcheck source=scripts/tools.sh
source scripts/tools.sh
command -v node >/dev/null || { echo "node (20+) is needed for the peer" >&2; exit 1; }
ensure_node_tools bench/node-peer

step "build (release)"
cargo build --release -p pitchey-mock-server -p pitchey-loadgen
TARGET="${CARGO_TARGET_DIR:-target}/release"
LG="$TARGET/pitchey-loadgen"

# 10k client sockets in the load generator, 10k in the server: raise the descriptor limit
# (root can raise the hard limit; otherwise take the hard limit as it is).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "open files: $(ulimit -n)"

RUN=(taskset -c 0)
if [ "$(id -u)" = 0 ] && command -v chrt >/dev/null; then
  RUN=(chrt -r 10 taskset -c 0)
else
  echo "note: not root: running without chrt; other work on the machine may distort the figures"
fi
run() { echo "+ ${RUN[*]} $*"; "${RUN[@]}" "$@"; }

if [ "$MODE" = quick ]; then
  OUT=bench/results/quick
  mkdir -p "$OUT"
  t0=$SECONDS
  run "$LG" fanout --conns 200 --broadcasts 20 --out "$OUT/fanout.json"
  run "$LG" idle --conns 200 --out "$OUT/idle.json"
  run "$LG" storm --conns 200 --out "$OUT/storm.json"
  run "$LG" churn --conns 200 --cycles 2 --settle-ms 500 --out "$OUT/churn.json"
  "$LG" plot --results "$OUT"
  echo "quick run: $((SECONDS - t0)) s"
  exit 0
fi

if [ "$MODE" = profile ]; then
  OUT=bench/results/profile
  mkdir -p "$OUT"
  command -v perf >/dev/null || { echo "perf is needed for --profile" >&2; exit 1; }
  run "$LG" fanout --servers pitchey --conns 10000 --modes burst \
    --perf-out "$OUT/fanout-10k.perf.data" --out "$OUT/fanout-perf-run.json"
  perf report -i "$OUT/fanout-10k.perf.data" --no-children --percent-limit 1 --stdio \
    -g none --sort symbol > "$OUT/fanout-10k-self.txt" 2>/dev/null
  perf report -i "$OUT/fanout-10k.perf.data" --children --percent-limit 3 --stdio \
    -g none --sort symbol > "$OUT/fanout-10k-children.txt" 2>/dev/null
  if command -v heaptrack >/dev/null; then
    # heaptrack runs the server as its child: the RSS figure of this run is heaptrack's
    # wrapper, so only the heap profile is kept.
    HT="$OUT/heaptrack-wrapper.sh"
    printf '#!/bin/sh\nexec heaptrack -o %s/idle-10k "%s" "$@"\n' "$PWD/$OUT" "$PWD/$TARGET/pitchey-mock-server" > "$HT"
    chmod +x "$HT"
    run "$LG" idle --servers pitchey --conns 10000 --pitchey-bin "$HT" --out "$OUT/idle-heaptrack-run.json" || true
    f=$(ls -t "$OUT"/idle-10k*.zst 2>/dev/null | head -1 || true)
    [ -n "$f" ] && heaptrack_print -f "$f" > "$OUT/idle-10k-heaptrack.txt" 2>/dev/null || true
  fi
  exit 0
fi

OUT=bench/results
mkdir -p "$OUT"
run "$LG" fanout --conns 1000,5000,10000 --out "$OUT/fanout.json" | tee "$OUT/fanout.txt"
run "$LG" idle --conns 10000 --out "$OUT/idle.json" | tee "$OUT/idle.txt"
run "$LG" storm --conns 5000 --out "$OUT/storm.json" | tee "$OUT/storm.txt"
run "$LG" churn --conns 10000 --cycles 3 --out "$OUT/churn.json" | tee "$OUT/churn.txt"
# Scenario 1 runs its server in process on both cores, as before (no taskset).
if [ "${RUN[0]}" = chrt ]; then
  chrt -r 10 "$LG" sdk-vs-bare --connections 200 --messages 50 | tee "$OUT/sdk-vs-bare.txt"
else
  "$LG" sdk-vs-bare --connections 200 --messages 50 | tee "$OUT/sdk-vs-bare.txt"
fi
"$LG" plot --results "$OUT"
