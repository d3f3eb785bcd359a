#!/usr/bin/env bash
# Makes sure a private MariaDB server for the tests answers on 127.0.0.1:13306.
#
# Run by tests/run.sh (as root on a fresh Debian 12 machine, or as any user where mariadbd is
# already installed):
#   - when FERRY_TEST_MYSQL_URL is already set, prints it back and does nothing else;
#   - when `mariadbd`/`mysqld` is missing, installs mariadb-server and mariadb-client with apt-get
#     (root only);
#   - when nothing answers on the port, initialises a private data dir under
#     /tmp/ferry-test-mariadb (once) and starts mariadbd there in the background, with its own
#     socket, pid file and error log in that dir, tuned for test speed (not durability);
#   - makes sure the user ferry/ferry ('ferry'@'%' and 'ferry'@'localhost') exists with ALL
#     privileges, and checks that it can log in over TCP;
#   - prints `export FERRY_TEST_MYSQL_URL=mysql://ferry:ferry@127.0.0.1:13306/` on stdout;
#   - TLS: makes a test CA and a server certificate for `localhost` (openssl, in $base/tls, once),
#     starts mariadbd with --ssl-ca/--ssl-cert/--ssl-key every time (so a server started from an
#     existing data dir on a fresh machine has TLS too), makes the user ferry_tls/ferry_tls_pw that
#     REQUIREs SSL, and prints FERRY_TEST_MYSQL_CA (the CA), FERRY_TEST_MYSQL_OTHER_CA (a second
#     CA that signed nothing the server has) and FERRY_TEST_MYSQL_TLS_URL (the TLS-only user).
#     A server that is already running without TLS (started by an older version of this script)
#     is left alone: a warning says so and the TLS variables are not printed (tests/sql_tls.rs
#     then skips, or fails when CI=true).
# Everything else goes to stderr. Idempotent: when the server already answers with those
# credentials it only prints the line. It never touches the system's own MariaDB (port 3306).
#
# Stop the private server:   kill "$(cat /tmp/ferry-test-mariadb/mariadbd.pid)"
# Start from scratch:        stop it, then rm -rf /tmp/ferry-test-mariadb
#
# Environment knobs:
#   FERRY_TEST_MARIADB_PORT  TCP port (default 13306)
#   FERRY_TEST_MARIADB_DIR   where data, socket, pid file and log live (default /tmp/ferry-test-mariadb)
#   FERRY_TEST_MARIADB_WAIT  seconds to wait for the server to accept connections (default 60)
set -euo pipefail

host=127.0.0.1
port="${FERRY_TEST_MARIADB_PORT:-13306}"
base="${FERRY_TEST_MARIADB_DIR:-/tmp/ferry-test-mariadb}"
wait_s="${FERRY_TEST_MARIADB_WAIT:-60}"
user=ferry
password=ferry
url="mysql://$user:$password@$host:$port/"

log() { echo "[setup/mariadb] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
emit() {
  printf 'export FERRY_TEST_MYSQL_URL=%q\n' "$1"
  emit_tls
}

if [ -n "${FERRY_TEST_MYSQL_URL:-}" ]; then
  log "FERRY_TEST_MYSQL_URL is already set; using it as is (and FERRY_TEST_MYSQL_CA/_TLS_URL if set)"
  printf 'export FERRY_TEST_MYSQL_URL=%q\n' "$FERRY_TEST_MYSQL_URL"
  exit 0
fi

# mariadbd lives in /usr/sbin, which is not on every PATH (su without -, sudo -E, ...).
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
case "$base" in /*) ;; *) base="$PWD/$base" ;; esac

datadir="$base/data"
sock="$base/mariadbd.sock"
pidfile="$base/mariadbd.pid"
errlog="$base/mariadbd.err"
marker="$base/.initialised"
tlsdir="$base/tls"
tls_user=ferry_tls
tls_password=ferry_tls_pw

# A test CA, a server certificate for `localhost` signed by it (so a client that connects to
# 127.0.0.1 and checks the host name must refuse it), and a second CA that signed nothing here.
# Made once; kept across restarts.
make_certs() {
  local d="$tlsdir"
  if [ -s "$d/ca.pem" ] && [ -s "$d/other-ca.pem" ] && [ -s "$d/server-cert.pem" ] \
     && [ -s "$d/server-key.pem" ]; then
    return 0
  fi
  command -v openssl >/dev/null 2>&1 || die "openssl is missing (apt-get install openssl)"
  log "making a test CA and a server certificate for localhost in $d"
  rm -rf "$d.new" && mkdir -p "$d.new"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${ec[@]}" -days 3650 -subj "/CN=ferry test CA (mariadb)" \
    -keyout "$d.new/ca-key.pem" -out "$d.new/ca.pem" >/dev/null 2>&1 </dev/null \
    || die "openssl could not make the test CA"
  openssl req -x509 "${ec[@]}" -days 3650 -subj "/CN=ferry other CA (mariadb)" \
    -keyout "$d.new/other-ca-key.pem" -out "$d.new/other-ca.pem" >/dev/null 2>&1 </dev/null \
    || die "openssl could not make the second test CA"
  openssl req "${ec[@]}" -subj "/CN=localhost" -keyout "$d.new/server-key.pem" \
    -out "$d.new/server.csr" >/dev/null 2>&1 </dev/null || die "openssl could not make a CSR"
  printf '%s\n' 'subjectAltName=DNS:localhost' 'basicConstraints=critical,CA:FALSE' \
    'keyUsage=critical,digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' \
    >"$d.new/server.ext"
  openssl x509 -req -in "$d.new/server.csr" -CA "$d.new/ca.pem" -CAkey "$d.new/ca-key.pem" \
    -CAcreateserial -days 3650 -extfile "$d.new/server.ext" -out "$d.new/server-cert.pem" \
    >/dev/null 2>&1 </dev/null || die "openssl could not sign the server certificate"
  chmod 600 "$d.new"/*key.pem
  rm -rf "$d" && mv "$d.new" "$d"
}

# Succeeds when the running server has TLS on (@@have_ssl is YES, not DISABLED).
server_has_tls() {
  local c out
  c="$(client)" || return 1
  out="$(MYSQL_PWD="$password" timeout 10 "$c" --no-defaults --protocol=TCP -h "$host" -P "$port" \
    -u "$user" --connect-timeout=3 -N -B -e 'SELECT @@have_ssl' 2>/dev/null </dev/null)" || return 1
  [ "$out" = YES ]
}

# Prints the TLS variables when the server has TLS and the CA files are there; else warns.
emit_tls() {
  if ! server_has_tls; then
    log "WARNING: the MariaDB on $host:$port has no TLS (it was started without --ssl-cert," \
        "e.g. by an older version of this script); it is left running as it is, and the TLS" \
        "tests (tests/sql_tls.rs) will skip. To enable TLS, stop it and run this script again:" \
        "kill \"\$(cat $pidfile)\""
    return 0
  fi
  if [ ! -s "$tlsdir/ca.pem" ] || [ ! -s "$tlsdir/other-ca.pem" ]; then
    log "WARNING: the MariaDB on $host:$port has TLS but $tlsdir/ca.pem is missing; TLS tests will skip"
    return 0
  fi
  if ! MYSQL_PWD="$tls_password" timeout 10 "$(client)" --no-defaults --protocol=TCP -h "$host" \
      -P "$port" -u "$tls_user" --ssl --connect-timeout=3 -N -B -e 'SELECT 1' \
      >/dev/null 2>&1 </dev/null; then
    log "WARNING: $tls_user cannot log in over TLS on $host:$port; TLS tests will skip"
    return 0
  fi
  printf 'export FERRY_TEST_MYSQL_CA=%q\n' "$tlsdir/ca.pem"
  printf 'export FERRY_TEST_MYSQL_OTHER_CA=%q\n' "$tlsdir/other-ca.pem"
  printf 'export FERRY_TEST_MYSQL_TLS_URL=%q\n' "mysql://$tls_user:$tls_password@$host:$port/"
}

# The TLS-only user (REQUIRE SSL: a plain login is refused). Needs TLS on the server.
ensure_tls_user() {
  server_has_tls || return 0
  log "creating/refreshing user $tls_user (REQUIRE SSL)"
  root_sql >&2 <<SQL
CREATE USER IF NOT EXISTS '$tls_user'@'%' IDENTIFIED BY '$tls_password' REQUIRE SSL;
CREATE USER IF NOT EXISTS '$tls_user'@'localhost' IDENTIFIED BY '$tls_password' REQUIRE SSL;
ALTER USER '$tls_user'@'%' IDENTIFIED BY '$tls_password' REQUIRE SSL;
ALTER USER '$tls_user'@'localhost' IDENTIFIED BY '$tls_password' REQUIRE SSL;
FLUSH PRIVILEGES;
SQL
}

client() {
  local c
  for c in mariadb mysql; do
    if command -v "$c" >/dev/null 2>&1; then echo "$c"; return 0; fi
  done
  return 1
}

# Runs SQL (argument) as ferry over TCP; silent. Succeeds when the server accepts the login.
ferry_login() {
  local c
  c="$(client)" || return 1
  MYSQL_PWD="$password" timeout 10 "$c" --no-defaults --protocol=TCP -h "$host" -P "$port" \
    -u "$user" --connect-timeout=3 -N -B -e "${1:-SELECT 1}" >/dev/null 2>&1 </dev/null
}

# Runs SQL (stdin) as root over this instance's own socket (root has no password there).
root_sql() {
  local c
  c="$(client)" || return 1
  timeout 30 "$c" --no-defaults --protocol=SOCKET -S "$sock" -u root --connect-timeout=3 -N -B
}

port_open() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

server_pid() {
  local pid
  [ -s "$pidfile" ] || return 1
  pid="$(cat "$pidfile" 2>/dev/null)" || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

ensure_user() {
  log "creating/refreshing user $user (ALL PRIVILEGES)"
  # Anonymous users would shadow ferry@%; root keeps only its passwordless login over the socket.
  local hn
  hn="$(hostname 2>/dev/null || true)"
  [ -n "$hn" ] && [ "$hn" != localhost ] || hn=localhost.invalid
  root_sql >&2 <<SQL
CREATE USER IF NOT EXISTS '$user'@'%' IDENTIFIED BY '$password';
CREATE USER IF NOT EXISTS '$user'@'localhost' IDENTIFIED BY '$password';
ALTER USER '$user'@'%' IDENTIFIED BY '$password';
ALTER USER '$user'@'localhost' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON *.* TO '$user'@'%' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$user'@'localhost' WITH GRANT OPTION;
DROP USER IF EXISTS ''@'localhost';
DROP USER IF EXISTS ''@'$hn';
DROP USER IF EXISTS 'root'@'$hn';
DROP USER IF EXISTS 'root'@'127.0.0.1';
DROP USER IF EXISTS 'root'@'::1';
FLUSH PRIVILEGES;
SQL
}

finish() {
  ferry_login "SELECT 1" || die "user $user cannot log in on $host:$port"
  ensure_tls_user
  log "MariaDB answers on $host:$port as $user"
  emit "$url"
  exit 0
}

# Fast path: already there.
if ferry_login; then
  log "MariaDB already answers on $host:$port with $user/$password"
  if server_pid >/dev/null && printf 'SELECT 1;\n' | root_sql >/dev/null 2>&1; then
    ensure_tls_user || log "WARNING: could not create $tls_user"
  fi
  emit "$url"
  exit 0
fi

mkdir -p "$base"
# One setup at a time (the lock fd is closed for the server so it is not held forever).
exec 9>"$base/.setup.lock"
if command -v flock >/dev/null 2>&1; then
  flock -w 300 9 || die "another setup holds $base/.setup.lock"
fi

# Re-check under the lock: another run may just have finished.
if ferry_login; then
  log "MariaDB already answers on $host:$port with $user/$password"
  emit "$url"
  exit 0
fi

if port_open; then
  # Something listens. If it is our instance (its socket answers for root), repair the user.
  if server_pid >/dev/null && printf 'SELECT 1;\n' | root_sql >/dev/null 2>&1; then
    ensure_user
    finish
  fi
  die "port $port on $host is taken by something that does not accept $user/$password" \
      "(set FERRY_TEST_MARIADB_PORT to use another port, or FERRY_TEST_MYSQL_URL to use that server)"
fi

# Install when missing.
if ! command -v mariadbd >/dev/null 2>&1 && ! command -v mysqld >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    log "installing mariadb-server and mariadb-client with apt-get"
    # Keep the package's own service from being started: the tests use a private instance.
    policy=/usr/sbin/policy-rc.d
    made_policy=0
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
      trap '[ "$made_policy" = 1 ] && rm -f "$policy"' EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
      mariadb-server mariadb-client >&2
    if [ "$made_policy" = 1 ]; then rm -f "$policy"; made_policy=0; fi
    hash -r
  else
    die "mariadbd is missing and cannot be installed here (need root and apt-get)"
  fi
fi
server="$(command -v mariadbd || command -v mysqld)" || die "mariadbd not found after install"
client >/dev/null || die "the mariadb/mysql client is missing (install mariadb-client)"
install_db="$(command -v mariadb-install-db || command -v mysql_install_db)" \
  || die "mariadb-install-db not found (install mariadb-server)"

as_root=0
[ "$(id -u)" = 0 ] && as_root=1
user_opt=()
[ "$as_root" = 1 ] && user_opt=(--user=root)

# Stale or half-made instance that is not running: start over only when initialisation did not
# complete; otherwise keep the data and just start the server again.
if pid="$(server_pid)"; then
  log "mariadbd (pid $pid) from $base is running but not on $host:$port yet; waiting for it"
else
  if [ ! -e "$marker" ]; then
    log "initialising a new data dir in $datadir"
    rm -rf "$datadir"
    mkdir -p "$datadir"
    # --force: do not insist on resolving the host name (fails in some containers/chroots).
    "$install_db" --no-defaults "${user_opt[@]}" --datadir="$datadir" \
      --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve --force \
      >"$base/install-db.log" 2>&1 </dev/null 9>&- \
      || { cat "$base/install-db.log" >&2; die "mariadb-install-db failed"; }
    touch "$marker"
  fi
  make_certs
  rm -f "$sock" "$sock.lock" "$pidfile"
  log "starting $server on $host:$port (data dir $datadir, log $errlog)"
  # setsid + nohup: keep running after this script (and tests/run.sh) exits. Its stdout must not
  # be ours, or `eval "$(bash mariadb.sh)"` would wait for the server to exit.
  setsid nohup "$server" --no-defaults "${user_opt[@]}" \
    --datadir="$datadir" \
    --bind-address="$host" --port="$port" \
    --socket="$sock" --pid-file="$pidfile" --log-error="$errlog" \
    --skip-name-resolve \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
    --max-connections=500 --max-allowed-packet=256M \
    --skip-log-bin \
    --innodb-flush-log-at-trx-commit=2 --sync-binlog=0 \
    --innodb-buffer-pool-size=512M --innodb-log-file-size=256M \
    --innodb-doublewrite=0 \
    --ssl-ca="$tlsdir/ca.pem" --ssl-cert="$tlsdir/server-cert.pem" \
    --ssl-key="$tlsdir/server-key.pem" \
    >"$base/mariadbd.out" 2>&1 </dev/null 9>&- &
  pid=$!
fi

log "waiting up to ${wait_s}s for mariadbd to accept connections"
deadline=$((SECONDS + wait_s))
while :; do
  if printf 'SELECT 1;\n' | root_sql >/dev/null 2>&1; then
    break
  fi
  if ! kill -0 "$pid" 2>/dev/null && ! server_pid >/dev/null; then
    log "mariadbd exited early; the end of its error log:"
    tail -n 40 "$errlog" >&2 2>/dev/null || true
    tail -n 20 "$base/mariadbd.out" >&2 2>/dev/null || true
    die "mariadbd did not start"
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    log "the end of its error log:"
    tail -n 40 "$errlog" >&2 2>/dev/null || true
    die "mariadbd did not accept connections within ${wait_s}s"
  fi
  sleep 0.2
done

ensure_user
finish
