#!/usr/bin/env bash
# bindings-mobile/scripts/build-xcframework.sh: the iOS XCFramework and Swift sources.
#
# NEEDS A MAC with Xcode (xcodebuild, lipo) and the Rust targets below. It is NOT run on the
# project's Linux machines (no Swift compiler, no Apple SDK there); there, scripts/test-mobile.sh
# only generates the Swift sources and checks their API names.
#
# Output: bindings-mobile/swift/PitcheyRealtimeFFI.xcframework (static libraries per Apple target
# plus the C header and modulemap uniffi generates) and bindings-mobile/swift/Sources/PitcheyRealtime/
# PitcheyRealtime.swift, which bindings-mobile/swift/Package.swift builds into the Swift package.
#
# Usage: bindings-mobile/scripts/build-xcframework.sh [--debug]
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(uname -s)" != "Darwin" ]; then
  echo "build-xcframework.sh needs macOS with Xcode (xcodebuild, lipo)" >&2
  exit 1
fi

profile=release
cargo_flag=--release
if [ "${1:-}" = "--debug" ]; then profile=debug; cargo_flag=; fi
target_dir="${CARGO_TARGET_DIR:-target}"
crate=pitchey-realtime-mobile
lib=libpitchey_realtime_mobile.a
out=bindings-mobile/swift
targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios)

rustup target add "${targets[@]}"
for t in "${targets[@]}"; do
  cargo build -p "$crate" --lib $cargo_flag --target "$t"
done

# Swift sources, header and modulemap from the host build of the same code (library mode).
cargo build -p "$crate" --lib $cargo_flag
gen="$(mktemp -d)"
cargo run -p "$crate" --features cli --bin uniffi-bindgen -- generate \
  --library "$target_dir/$profile/libpitchey_realtime_mobile.dylib" --language swift --out-dir "$gen"

headers="$gen/headers"
mkdir -p "$headers"
cp "$gen/PitcheyRealtimeFFI.h" "$headers/"
# An XCFramework wants the modulemap named module.modulemap next to the header.
cp "$gen/PitcheyRealtimeFFI.modulemap" "$headers/module.modulemap"

# One fat library for the two simulator architectures.
sim="$gen/ios-simulator"
mkdir -p "$sim"
lipo -create \
  "$target_dir/aarch64-apple-ios-sim/$profile/$lib" \
  "$target_dir/x86_64-apple-ios/$profile/$lib" \
  -output "$sim/$lib"

rm -rf "$out/PitcheyRealtimeFFI.xcframework"
xcodebuild -create-xcframework \
  -library "$target_dir/aarch64-apple-ios/$profile/$lib" -headers "$headers" \
  -library "$sim/$lib" -headers "$headers" \
  -output "$out/PitcheyRealtimeFFI.xcframework"

mkdir -p "$out/Sources/PitcheyRealtime"
cp "$gen/PitcheyRealtime.swift" "$out/Sources/PitcheyRealtime/"
echo "built $out/PitcheyRealtimeFFI.xcframework and $out/Sources/PitcheyRealtime/PitcheyRealtime.swift"
