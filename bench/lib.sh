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

# The private MariaDB of tests/setup/mariadb.sh (or whatever FERRY_TEST_MYSQL_URL names), started
# when needed. Sets DB_USER, DB_PASS, DB_HOST, DB_PORT and BASE_URL (mysql://user:pw@host:port)
# and exports MYSQL_PWD for the command-line clients.
bench_mariadb() {
  eval "$(bash "$REPO/tests/setup/mariadb.sh")"
  local url="${FERRY_TEST_MYSQL_URL:-}" re='^mysql://([^:@/]+):([^@/]*)@([^:/]+):([0-9]+)/?'
  [[ "$url" =~ $re ]] || { log "cannot parse '$url' (want mysql://user:password@host:port/)"; exit 1; }
  DB_USER="${BASH_REMATCH[1]}"; DB_PASS="${BASH_REMATCH[2]}"
  DB_HOST="${BASH_REMATCH[3]}"; DB_PORT="${BASH_REMATCH[4]}"
  BASE_URL="mysql://$DB_USER:$DB_PASS@$DB_HOST:$DB_PORT"
  export MYSQL_PWD="$DB_PASS"
  bench_sql_client="$(command -v mariadb || command -v mysql)" || { log "no mariadb client"; exit 1; }
}

# bench_sql ARGS...: that server's command-line client, batch output without column names.
bench_sql() {
  "$bench_sql_client" --no-defaults --protocol=TCP -h "$DB_HOST" -P "$DB_PORT" -u "$DB_USER" -N -B "$@"
}

# The server's PID (from @@pid_file) when it runs on this machine, else nothing.
bench_mariadb_pid() {
  local pidf pid
  pidf="$(bench_sql -e 'SELECT @@pid_file' 2>/dev/null || true)"
  case "$pidf" in /*) ;; *) [ -n "$pidf" ] && pidf="$(bench_sql -e 'SELECT @@datadir')/$pidf" ;; esac
  [ -n "$pidf" ] && [ -r "$pidf" ] || return 0
  pid="$(cat "$pidf")"
  [ -r "/proc/$pid/stat" ] && echo "$pid"
  return 0
}

# CPU seconds (user + system) process PID has used so far, or nothing when it cannot be read.
# utime and stime are fields 14 and 15 (the name, field 2, has no spaces for these servers).
bench_cpu_seconds() {
  [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ] || return 0
  awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat"
}
