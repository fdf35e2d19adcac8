#!/usr/bin/env bash
# scripts/tools.sh: the tools that the browser (WASM) and mobile (uniffi/Kotlin) test suites need,
# installed from the package registries this project can reach (crates.io, npm, Debian apt).
#
# A library, not a program: `source scripts/tools.sh` (scripts/test.sh does), then call the
# ensure_* functions. Each one is idempotent: it checks for the tool at the right version, skips
# when it is there, installs it otherwise, and prints one line saying which it did (and how long an
# install took). An install's own output goes to a log file, shown only when the install fails.
# Safe under `set -euo pipefail`; sourcing it changes no shell option.
#
#   ensure_wasm_target           rustup target wasm32-unknown-unknown
#   ensure_wasm_bindgen_cli      wasm-bindgen-cli at exactly the wasm-bindgen version in Cargo.lock
#   ensure_wasm_pack             wasm-pack $PITCHEY_WASM_PACK_VERSION
#   ensure_chromium              Debian chromium + chromium-driver (/usr/bin/chromium, chromedriver)
#   ensure_node_tools DIR        npm ci (npm install without a lock file) in DIR when node_modules is stale
#   ensure_kotlin                npm kotlin-compiler + Debian libjna-java; exports KOTLINC,
#                                KOTLIN_STDLIB_JAR, KOTLIN_COROUTINES_JAR, JNA_JAR (and the compiler's
#                                bin/ on PATH); needs Java 17+
#   ensure_binaryen              npm binaryen; its wasm-opt on PATH
#   ensure_redis                 Debian redis-server
#   ensure_nightly               rustup toolchain $PITCHEY_NIGHTLY (profile minimal) with rust-src:
#                                the npm package's size build (build-std) and cargo-fuzz
#
# Where npm-installed tools and the install logs go: $PITCHEY_TOOLS_DIR
# (default ~/.cache/pitchey-tools). Set PITCHEY_TOOLS_VERBOSE=1 to see install output as it runs.

# Versions pinned here (the wasm-bindgen one is read from Cargo.lock at run time).
PITCHEY_WASM_BINDGEN_FALLBACK_VERSION="${PITCHEY_WASM_BINDGEN_FALLBACK_VERSION:-0.2.130}"
PITCHEY_WASM_PACK_VERSION="${PITCHEY_WASM_PACK_VERSION:-0.15.1}"
PITCHEY_KOTLIN_VERSION="${PITCHEY_KOTLIN_VERSION:-2.4.20}"
PITCHEY_BINARYEN_VERSION="${PITCHEY_BINARYEN_VERSION:-132.0.0}"
# A dated nightly, not the moving `nightly`: the flags that build.sh gives it
# (`-Cpanic=immediate-abort`) are unstable and have changed shape between nightlies.
PITCHEY_NIGHTLY="${PITCHEY_NIGHTLY:-nightly-2026-10-30}"

# The repository root (for Cargo.lock), found from this file's own location.
_PT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_PT_APT_UPDATED="${_PT_APT_UPDATED:-}"

_pt_tools_dir() {
  local dir="${PITCHEY_TOOLS_DIR:-${HOME:-/root}/.cache/pitchey-tools}"
  mkdir -p "$dir"
  printf '%s\n' "$dir"
}

_pt_say() { printf 'tools: %s\n' "$*"; }

# _pt_run LOGNAME CMD...: runs CMD with its output in $PITCHEY_TOOLS_DIR/logs/LOGNAME.log;
# on failure prints the log's tail to stderr and returns CMD's status.
_pt_run() {
  local name="$1"
  shift
  local logdir
  logdir="$(_pt_tools_dir)/logs"
  mkdir -p "$logdir"
  local log="$logdir/$name.log"
  if [ -n "${PITCHEY_TOOLS_VERBOSE:-}" ]; then
    local vrc=0
    "$@" 2>&1 | tee "$log" || vrc=$?
    return "$vrc"
  fi
  local rc=0
  "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    printf 'tools: FAILED (exit %s): %s\n--- last lines of %s ---\n' "$rc" "$*" "$log" >&2
    tail -n 40 "$log" >&2
  fi
  return "$rc"
}

# Root runs apt-get itself; anyone else through sudo (as scripts/test.sh did for redis-server).
_pt_as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# _pt_apt_install PKG...: `apt-get update` once per shell, then install.
_pt_apt_install() {
  if [ -z "$_PT_APT_UPDATED" ]; then
    _pt_run apt-update _pt_as_root apt-get update || return 1
    _PT_APT_UPDATED=1
  fi
  _pt_run "apt-$1" _pt_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# _pt_cargo_install LOGNAME ARGS...: a niced `cargo install`, run from the tools directory so that
# no project .cargo/config.toml (build target, target dir) applies to it.
_pt_cargo_install() {
  local name="$1"
  shift
  local dir
  dir="$(_pt_tools_dir)"
  _pt_run "$name" _pt_cargo_install_in "$dir" "$@"
}
_pt_cargo_install_in() (
  cd "$1" && shift && exec nice -n 10 cargo install "$@"
)

# _pt_npm_pkg_version DIR PKG: the version of PKG installed under DIR/node_modules, or nothing.
_pt_npm_pkg_version() {
  local pj="$1/node_modules/$2/package.json"
  [ -f "$pj" ] || return 0
  node -e 'process.stdout.write(String(require(process.argv[1]).version || ""))' "$pj" 2>/dev/null || true
}

# _pt_path_prepend DIR: puts DIR first on PATH (once) and exports PATH.
_pt_path_prepend() {
  case ":${PATH:-}:" in
    *":$1:"*) ;;
    *) PATH="$1${PATH:+:$PATH}" ;;
  esac
  export PATH
}

# The wasm-bindgen crate version in Cargo.lock (first one listed), or the fallback pin.
pitchey_wasm_bindgen_version() {
  local v=""
  if [ -f "$_PT_ROOT/Cargo.lock" ]; then
    v="$(awk '
      /^\[\[package\]\]/ { inpkg = 0 }
      /^name = "wasm-bindgen"$/ { inpkg = 1; next }
      inpkg && /^version = / { gsub(/^version = "|"$/, ""); print; exit }
    ' "$_PT_ROOT/Cargo.lock")"
  fi
  printf '%s\n' "${v:-$PITCHEY_WASM_BINDGEN_FALLBACK_VERSION}"
}

ensure_wasm_target() {
  local installed
  installed="$(rustup target list --installed 2>/dev/null || true)"
  if grep -qx wasm32-unknown-unknown <<<"$installed"; then
    _pt_say "rustup target wasm32-unknown-unknown: present"
    return 0
  fi
  local t0=$SECONDS
  _pt_run rustup-wasm32 rustup target add wasm32-unknown-unknown || return 1
  _pt_say "rustup target wasm32-unknown-unknown: installed ($((SECONDS - t0))s)"
}

ensure_wasm_bindgen_cli() {
  local want have=""
  want="$(pitchey_wasm_bindgen_version)"
  if command -v wasm-bindgen >/dev/null 2>&1; then
    have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2; exit}' || true)"
  fi
  if [ "$have" = "$want" ]; then
    _pt_say "wasm-bindgen-cli $want: present"
    return 0
  fi
  local t0=$SECONDS
  # No --locked: one of the CLI's locked dependencies is not on the registry mirror.
  _pt_cargo_install wasm-bindgen-cli wasm-bindgen-cli --version "$want" || return 1
  have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2; exit}' || true)"
  if [ "$have" != "$want" ]; then
    printf 'tools: wasm-bindgen on PATH is %s after installing %s (%s)\n' \
      "${have:-missing}" "$want" "$(command -v wasm-bindgen || echo 'not on PATH')" >&2
    return 1
  fi
  _pt_say "wasm-bindgen-cli $want: installed ($((SECONDS - t0))s)"
}

ensure_wasm_pack() {
  local want="$PITCHEY_WASM_PACK_VERSION" have=""
  if command -v wasm-pack >/dev/null 2>&1; then
    have="$(wasm-pack --version 2>/dev/null | awk '{print $2; exit}' || true)"
  fi
  if [ "$have" = "$want" ]; then
    _pt_say "wasm-pack $want: present"
    return 0
  fi
  local t0=$SECONDS
  _pt_cargo_install wasm-pack wasm-pack --version "$want" || return 1
  _pt_say "wasm-pack $want: installed ($((SECONDS - t0))s)"
}

ensure_chromium() {
  if [ -x /usr/bin/chromium ] && command -v chromedriver >/dev/null 2>&1; then
    _pt_say "chromium + chromedriver: present"
    return 0
  fi
  local t0=$SECONDS
  _pt_apt_install chromium chromium-driver || return 1
  _pt_say "chromium + chromedriver: installed ($((SECONDS - t0))s)"
}

# ensure_node_tools DIR: DIR has a package.json; installs its node_modules when missing or older
# than package-lock.json (package.json when there is no lock file).
ensure_node_tools() {
  local dir="${1:-}"
  if [ -z "$dir" ] || [ ! -f "$dir/package.json" ]; then
    printf 'tools: ensure_node_tools: no package.json in "%s"\n' "$dir" >&2
    return 1
  fi
  local lock="$dir/package-lock.json" ref cmd
  if [ -f "$lock" ]; then
    ref="$lock"
    cmd=ci
  else
    ref="$dir/package.json"
    cmd=install
  fi
  # npm writes node_modules/.package-lock.json last: without it the install is not whole.
  if [ -f "$dir/node_modules/.package-lock.json" ] && [ ! "$ref" -nt "$dir/node_modules" ]; then
    _pt_say "node modules in $dir: present"
    return 0
  fi
  local t0=$SECONDS
  _pt_run "npm-$(basename "$dir")" npm --prefix "$dir" "$cmd" --no-audit --no-fund || return 1
  # npm install may write the lock file after node_modules: mark node_modules as the newer.
  touch "$dir/node_modules"
  _pt_say "node modules in $dir: npm $cmd ($((SECONDS - t0))s)"
}

# _pt_java_major: the major version of `java` on PATH (8 for 1.8), or nothing.
_pt_java_major() {
  command -v java >/dev/null 2>&1 || return 0
  java -version 2>&1 | awk -F'"' '/version/ {
    split($2, v, "."); if (v[1] == "1") print v[2]; else print v[1]; exit }' || true
}

ensure_kotlin() {
  local t0=$SECONDS did=""
  local major
  major="$(_pt_java_major)"
  if [ -z "$major" ]; then
    _pt_apt_install openjdk-17-jre-headless || return 1
    major="$(_pt_java_major)"
    did="openjdk-17-jre-headless"
  fi
  if [ -z "$major" ] || [ "$major" -lt 17 ]; then
    printf 'tools: kotlinc needs Java 17+, "java -version" says %s\n' "${major:-nothing}" >&2
    return 1
  fi

  local dir pkg
  dir="$(_pt_tools_dir)/kotlin"
  pkg="$dir/node_modules/kotlin-compiler"
  if [ "$(_pt_npm_pkg_version "$dir" kotlin-compiler)" != "$PITCHEY_KOTLIN_VERSION" ] \
    || [ ! -x "$pkg/bin/kotlinc-jvm" ]; then
    mkdir -p "$dir"
    [ -f "$dir/package.json" ] || printf '{"private":true}\n' >"$dir/package.json"
    _pt_run npm-kotlin-compiler npm --prefix "$dir" install --no-audit --no-fund \
      "kotlin-compiler@$PITCHEY_KOTLIN_VERSION" || return 1
    did="${did:+$did, }kotlin-compiler $PITCHEY_KOTLIN_VERSION"
  fi

  if [ ! -f /usr/share/java/jna.jar ]; then
    _pt_apt_install libjna-java || return 1
    did="${did:+$did, }libjna-java"
  fi

  local stdlib="$pkg/lib/kotlin-stdlib.jar" coroutines="" jar
  for jar in "$pkg"/lib/kotlinx-coroutines-core-jvm*.jar; do
    if [ -f "$jar" ]; then
      coroutines="$jar"
      break
    fi
  done
  if [ ! -f "$stdlib" ] || [ -z "$coroutines" ]; then
    printf 'tools: kotlin-compiler %s has no lib/kotlin-stdlib.jar or lib/kotlinx-coroutines-core-jvm*.jar\n' \
      "$PITCHEY_KOTLIN_VERSION" >&2
    return 1
  fi
  export KOTLINC="$pkg/bin/kotlinc-jvm"
  export KOTLIN_STDLIB_JAR="$stdlib"
  export KOTLIN_COROUTINES_JAR="$coroutines"
  export JNA_JAR=/usr/share/java/jna.jar
  _pt_path_prepend "$pkg/bin"
  if [ -n "$did" ]; then
    _pt_say "kotlin $PITCHEY_KOTLIN_VERSION (Java $major) + JNA: installed $did ($((SECONDS - t0))s)"
  else
    _pt_say "kotlin $PITCHEY_KOTLIN_VERSION (Java $major) + JNA: present"
  fi
}

ensure_binaryen() {
  local dir bin
  dir="$(_pt_tools_dir)/binaryen"
  bin="$dir/node_modules/.bin"
  local t0=$SECONDS did=""
  if [ "$(_pt_npm_pkg_version "$dir" binaryen)" != "$PITCHEY_BINARYEN_VERSION" ] || [ ! -x "$bin/wasm-opt" ]; then
    mkdir -p "$dir"
    [ -f "$dir/package.json" ] || printf '{"private":true}\n' >"$dir/package.json"
    _pt_run npm-binaryen npm --prefix "$dir" install --no-audit --no-fund \
      "binaryen@$PITCHEY_BINARYEN_VERSION" || return 1
    did=1
  fi
  _pt_path_prepend "$bin"
  if [ -n "$did" ]; then
    _pt_say "binaryen $PITCHEY_BINARYEN_VERSION (wasm-opt on PATH): installed ($((SECONDS - t0))s)"
  else
    _pt_say "binaryen $PITCHEY_BINARYEN_VERSION (wasm-opt on PATH): present"
  fi
}

ensure_redis() {
  if command -v redis-server >/dev/null 2>&1; then
    _pt_say "redis-server: present"
    return 0
  fi
  local t0=$SECONDS
  _pt_apt_install redis-server || return 1
  _pt_say "redis-server: installed ($((SECONDS - t0))s)"
}

ensure_nightly() {
  if rustup run "$PITCHEY_NIGHTLY" rustc --version >/dev/null 2>&1 &&
    rustup component list --toolchain "$PITCHEY_NIGHTLY" --installed 2>/dev/null | grep -q '^rust-src'; then
    _pt_say "rust $PITCHEY_NIGHTLY + rust-src: present"
    return 0
  fi
  local t0=$SECONDS
  _pt_run rustup-nightly rustup toolchain install "$PITCHEY_NIGHTLY" --profile minimal \
    --component rust-src || return 1
  _pt_say "rust $PITCHEY_NIGHTLY + rust-src: installed ($((SECONDS - t0))s)"
}
