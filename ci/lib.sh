# Shared set-up for the ci/ scripts: where caches live and how to install the tools they need.
# Sourced, not run.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
# Tools and build caches live outside the clone so fresh clones reuse them.
CACHE_DIR="${TRIBUTARY_CACHE:-$HOME/.cache/tributary}"
export CACHE_DIR
mkdir -p "$CACHE_DIR"
if [ "${CI:-}" = "true" ] && [ -z "${CARGO_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR="$CACHE_DIR/target"
fi
# A CI clone is built once: incremental state would cost time and disk and never be reused.
if [ "${CI:-}" = "true" ] && [ -z "${CARGO_INCREMENTAL:-}" ]; then
  export CARGO_INCREMENTAL=0
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export TARGET_DIR

BINARYEN_VERSION="132.0.0"
export PATH="$HOME/.cargo/bin:$CACHE_DIR/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }

# A build cache shared by every clone grows with each build (tens of GB): drop what no later
# build reuses, incremental state and executables not rebuilt for two days, before it fills
# the disk. Cargo rebuilds anything removed that a build still needs.
prune_target() {
  local dir
  for dir in "$TARGET_DIR"/debug/incremental "$TARGET_DIR"/release/incremental; do
    [ -d "$dir" ] && find "$dir" -mindepth 1 -maxdepth 1 -mtime +1 -exec rm -rf {} +
  done
  # Test and binary executables have no extension; proc-macro libraries (.so) that every
  # build links against stay.
  for dir in "$TARGET_DIR"/debug/deps "$TARGET_DIR"/release/deps; do
    [ -d "$dir" ] && find "$dir" -maxdepth 1 -type f -executable ! -name '*.*' -mtime +1 -delete
  done
  return 0
}

ensure_rust() {
  if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust with rustup (https://rustup.rs) and re-run" >&2
    exit 1
  fi
}

# The clippy-driver of the active toolchain (rustup installs clippy with the default profile).
clippy_driver() {
  local driver
  driver="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver || true)"
  if [ -z "$driver" ]; then
    step "installing clippy" >&2
    rustup component add clippy >&2
    driver="$(rustup which clippy-driver)"
  fi
  echo "$driver"
}

ensure_wasm_target() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    step "installing the wasm32-unknown-unknown target (takes a minute)"
    rustup target add wasm32-unknown-unknown
  fi
}

# binaryen's wasm-opt from npm: Debian's is too old to lower bulk-memory instructions.
ensure_wasm_opt() {
  WASM_OPT="$CACHE_DIR/binaryen-$BINARYEN_VERSION/node_modules/.bin/wasm-opt"
  if [ ! -x "$WASM_OPT" ]; then
    if ! command -v npm >/dev/null; then
      echo "npm not found: install Node.js 20+ and re-run" >&2
      exit 1
    fi
    step "installing binaryen $BINARYEN_VERSION (wasm-opt) from npm"
    npm install --silent --no-audit --no-fund --prefix "$CACHE_DIR/binaryen-$BINARYEN_VERSION" "binaryen@$BINARYEN_VERSION" >/dev/null
  fi
  export WASM_OPT
}

# The Debian packages whose files the demo's datanets are built from.
DEMO_PACKAGES="manpages-dev fortunes"

ensure_demo_corpora() {
  local missing=()
  [ -d /usr/share/man/man2 ] && [ -n "$(ls /usr/share/man/man2 2>/dev/null)" ] || missing+=(manpages-dev)
  [ -f /usr/share/games/fortunes/computers ] || missing+=(fortunes)
  if [ "${#missing[@]}" -gt 0 ]; then
    step "installing the demo's corpora from Debian: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    # Slim images exclude /usr/share/man from packages; the demo needs those files.
    if [ -f /etc/dpkg/dpkg.cfg.d/docker ] || [ -f /etc/dpkg/dpkg.cfg.d/excludes ]; then
      echo "note: this image's dpkg config excludes documentation; installing manual pages regardless" >&2
      for f in /etc/dpkg/dpkg.cfg.d/docker /etc/dpkg/dpkg.cfg.d/excludes; do
        [ -f "$f" ] && $sudo sed -i 's|^path-exclude[= ]/usr/share/man|#&|' "$f"
      done
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends --reinstall "${missing[@]}" >/dev/null
  fi
}

# Debian's Chromium, which the web app's browser test drives (Playwright cannot download its own).
ensure_chromium() {
  if ! command -v chromium >/dev/null; then
    step "installing chromium from Debian (for the web app's browser test)"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
  fi
}
