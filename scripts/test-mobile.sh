#!/usr/bin/env bash
# scripts/test-mobile.sh: the mobile SDK (bindings-mobile, uniffi) tested here.
#
# 1. installs what is missing (kotlinc from npm, JNA from Debian; see scripts/tools.sh);
# 2. runs the crate's Rust tests (unit tests, the jumped-clock test against the in-process
#    reference server);
# 3. builds the cdylib (debug) and the `uniffi-bindgen` binary (feature `cli`), generates the
#    Kotlin and Swift sources in library mode, and checks the Swift ones for the expected API
#    names (there is no Swift compiler here: the XCFramework is built on a Mac by
#    bindings-mobile/scripts/build-xcframework.sh);
# 4. builds pitchey-mock-server, starts it on a port the OS picks (--port 0, the address read
#    from its banner) with a JWT_SECRET made up for this run;
# 5. compiles bindings-mobile/tests/kotlin/*.kt with the generated bindings (kotlinc-jvm, JNA,
#    kotlinx-coroutines) and runs it with `java` against the server;
# 6. generates the Python bindings and runs bindings-mobile/tests/python/scenario.py (the same
#    scenario in a second foreign language); stops the server on exit.
#
# Usage: scripts/test-mobile.sh. Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

step() { printf '\n==> %s (%ss)\n' "$*" "$((SECONDS - started))"; }

# shellcheck source=scripts/tools.sh
source scripts/tools.sh
step "tools"
ensure_kotlin

target_dir="${CARGO_TARGET_DIR:-target}"
workdir="$(mktemp -d "${TMPDIR:-/tmp}/pitchey-mobile-tests.XXXXXX")"
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

step "Rust tests of bindings-mobile (unit, jumped clock)"
cargo test -p pitchey-realtime-mobile

step "cdylib, uniffi-bindgen, pitchey-mock-server"
# The generator first, the library last: the two share the output path, and the library the
# tests load must be the shipped one, without the `cli` feature.
cargo build -p pitchey-realtime-mobile --features cli --bin uniffi-bindgen
cargo build -p pitchey-realtime-mobile --lib
cargo build -p pitchey-mock-server
lib="$target_dir/debug/libpitchey_realtime_mobile.so"
bindgen="$target_dir/debug/uniffi-bindgen"
server_bin="$target_dir/debug/pitchey-mock-server"
# The shipped library carries no code generator (the `cli` feature stays out of it).
if grep -q -a 'uniffi_bindgen' "$lib"; then
  echo "$lib contains uniffi_bindgen: the cli feature leaked into the shipped library" >&2
  exit 1
fi

step "generate Kotlin and Swift (library mode)"
gen="$workdir/generated"
"$bindgen" generate --library "$lib" --language kotlin --no-format --out-dir "$gen/kotlin"
"$bindgen" generate --library "$lib" --language swift --no-format --out-dir "$gen/swift"
kt="$(find "$gen/kotlin" -name '*.kt' | head -n 1)"
[ -n "$kt" ] || { echo "no Kotlin generated" >&2; exit 1; }
grep -q '^package com.pitchey.realtime' "$kt" || { echo "Kotlin package is not com.pitchey.realtime (uniffi.toml not read?)" >&2; exit 1; }
swift="$gen/swift/PitcheyRealtime.swift"
for f in "$swift" "$gen/swift/PitcheyRealtimeFFI.h" "$gen/swift/PitcheyRealtimeFFI.modulemap"; do
  [ -s "$f" ] || { echo "missing Swift output $f" >&2; ls "$gen/swift" >&2; exit 1; }
done
# Signatures as uniffi 0.32 writes them (spacing varies, hence the patterns).
for pattern in 'class ClientBuilder' 'class Client\b' 'func connect\(\) ?async throws' \
  'func reportPitchViewConfirmed\(pitchId: UInt64\) ?async throws +-> String' \
  'func subscribeNotifications\(listener: EventListener\) ?async throws +-> SubscriptionHandle' \
  'func onForeground\(\) ?throws' 'func onBackground\(\) ?throws' \
  'func onNetworkAvailable\(available: Bool\) ?throws' \
  'public protocol TokenProvider' 'func fetchToken\(\) +-> String\?' 'public protocol EventListener' \
  'enum PitcheyError: Swift.Error' 'case QueueFull\(' 'case Unauthorized\(' 'func openDraft\(' \
  'func persistenceDir\(path: String\) +-> ClientBuilder' 'func resolveWithLocal\(\) ?async throws'; do
  grep -qE -- "$pattern" "$swift" || { echo "Swift API lacks: $pattern" >&2; exit 1; }
done
echo "Swift: $(wc -l <"$swift") lines, API names present"

step "reference server"
JWT_SECRET="mobile-tests-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
pitchey_server_start "$server_bin" "$workdir"
ws_url="$PITCHEY_SERVER_WS_URL"
http_url="$PITCHEY_SERVER_HTTP_URL"

step "compile the Kotlin test with the generated bindings"
classes="$workdir/classes"
cp_jars="$JNA_JAR:$KOTLIN_COROUTINES_JAR"
"$KOTLINC" -nowarn -cp "$cp_jars" -d "$classes" "$kt" bindings-mobile/tests/kotlin/*.kt 2>&1 |
  grep -v '^warning:' || true
[ -f "$classes/MainKt.class" ] || { echo "kotlinc produced no MainKt.class" >&2; exit 1; }

step "run the Kotlin test on the JVM"
export PITCHEY_WS_URL="$ws_url" PITCHEY_HTTP_URL="$http_url" PITCHEY_SERVER_BIN="$server_bin"
PITCHEY_ADMIN_TOKEN="$("$server_bin" token --user 999 --admin --username admin --ttl-secs 7200)"
export PITCHEY_ADMIN_TOKEN PITCHEY_WORK_DIR="$workdir"
java -Djna.library.path="$(dirname "$lib")" -cp "$classes:$cp_jars:$KOTLIN_STDLIB_JAR" MainKt

step "the same scenario in Python (a second foreign language, bindings generated from the same library)"
"$bindgen" generate --library "$lib" --language python --no-format --out-dir "$gen/python"
cp "$lib" "$gen/python/"
python3 bindings-mobile/tests/python/scenario.py "$gen/python"

printf '\nmobile tests passed in %ss\n' "$((SECONDS - started))"
