# Setup shared by the benchmark scripts (sourced, after each script defines `log`).

apt_updated=0
# Installs Debian packages (as root), running `apt-get update` once per script run.
bench_apt_install() {
  [ "$(id -u)" = 0 ] || { log "missing $* (install them, or run as root)"; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  if [ "$apt_updated" = 0 ]; then
    apt-get -o DPkg::Lock::Timeout=600 update -q >&2
    apt_updated=1
  fi
  apt-get -o DPkg::Lock::Timeout=600 install -y -q "$@" >&2
}

# Puts cargo on PATH. A toolchain is not downloaded: the project's machines come with one.
bench_ensure_cargo() {
  command -v cargo >/dev/null && return
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
    return
  fi
  log "no Rust toolchain (cargo) found: install one, then run again"
  exit 1
}

# Builds ferry in release mode into target-bench/ (never target/, which tests use).
bench_build_ferry() {
  log "building ferry (release, CARGO_TARGET_DIR=target-bench)"
  (cd "$REPO" && CARGO_TARGET_DIR="$REPO/target-bench" cargo build --release --locked -q >&2)
}
