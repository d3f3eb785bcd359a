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

# The s3s-fs server of a benchmark, on 127.0.0.1:$port with keys $KEY/$SECRET over the folder
# $ROOT, logging to $LOGS/s3s-fs.log ($S3S is the binary). Scripts set `trap stop_server EXIT`.
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
start_server() {
  "$S3S" --host 127.0.0.1 --port "$port" --access-key "$KEY" --secret-key "$SECRET" "$ROOT" \
    >>"$LOGS/s3s-fs.log" 2>&1 &
  server_pid=$!
  local i
  for i in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return; fi
    sleep 0.1
  done
  echo "s3s-fs did not start on port $port (see $LOGS/s3s-fs.log)" >&2
  exit 1
}
