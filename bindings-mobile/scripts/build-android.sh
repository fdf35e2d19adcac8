#!/usr/bin/env bash
# bindings-mobile/scripts/build-android.sh: the Android .so files and the Kotlin sources for the
# Gradle module in bindings-mobile/android.
#
# NEEDS THE ANDROID NDK (ANDROID_NDK_HOME, r26 or later) and cargo-ndk (`cargo install
# cargo-ndk`). It is NOT run on the project's machines (no NDK there); scripts/test-mobile.sh
# tests the same Kotlin bindings on a JVM with the host's .so instead.
#
# Output: bindings-mobile/android/src/main/jniLibs/<abi>/libpitchey_realtime_mobile.so for
# arm64-v8a, armeabi-v7a, x86_64 and x86, and bindings-mobile/android/src/main/kotlin/... (the
# generated com.pitchey.realtime package).
#
# Usage: bindings-mobile/scripts/build-android.sh [--debug]
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${ANDROID_NDK_HOME:?set ANDROID_NDK_HOME to the Android NDK}"
command -v cargo-ndk >/dev/null || { echo "install cargo-ndk: cargo install cargo-ndk" >&2; exit 1; }

profile=release
cargo_flag=--release
if [ "${1:-}" = "--debug" ]; then profile=debug; cargo_flag=; fi
target_dir="${CARGO_TARGET_DIR:-target}"
crate=pitchey-realtime-mobile
out=bindings-mobile/android/src/main

rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android i686-linux-android
# API 24 (Android 7): the module's minSdk.
cargo ndk --platform 24 -t arm64-v8a -t armeabi-v7a -t x86_64 -t x86 -o "$out/jniLibs" \
  build -p "$crate" --lib $cargo_flag

# Kotlin sources from the host build of the same code (library mode).
cargo build -p "$crate" --lib $cargo_flag
rm -rf "$out/kotlin/com/pitchey/realtime"
cargo run -p "$crate" --features cli --bin uniffi-bindgen -- generate \
  --library "$target_dir/$profile/libpitchey_realtime_mobile.so" --language kotlin --out-dir "$out/kotlin"
echo "built $out/jniLibs/*/libpitchey_realtime_mobile.so and $out/kotlin/com/pitchey/realtime"
