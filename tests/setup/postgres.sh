#!/usr/bin/env bash
# Makes sure a private PostgreSQL cluster for the tests answers on 127.0.0.1:15432.
#
# Run by tests/run.sh (as root on a fresh Debian 12 machine, or as any user where the PostgreSQL
# server binaries are already installed):
#   - when FERRY_TEST_POSTGRES_URL is already set, prints it back and does nothing else;
#   - when initdb/pg_ctl are missing (Debian keeps them in /usr/lib/postgresql/<ver>/bin),
#     installs `postgresql` with apt-get (root only);
#   - when nothing answers on the port, creates a private cluster in /tmp/ferry-test-postgres
#     (once; owned by the `postgres` OS user when run as root, since PostgreSQL refuses to run as
#     root) and starts it with pg_ctl, tuned for test speed (fsync, synchronous_commit and
#     full_page_writes off: not crash-safe, which is fine for tests);
#   - TCP logins need a password (scram-sha-256); makes sure the role ferry/ferry exists as
#     SUPERUSER (so tests can create databases), and checks that it can log in over TCP;
#   - prints `export FERRY_TEST_POSTGRES_URL=postgres://ferry:ferry@127.0.0.1:15432/postgres`;
#   - TLS: makes a test CA and a server certificate for `localhost` (openssl, in $base/tls, once),
#     and starts the server every time with ssl=on, that certificate and this script's own
#     pg_hba.conf ($base/pg_hba.conf, rewritten at each start, so a cluster started from an
#     existing data dir on a fresh machine has TLS too); the role ferry_tls/ferry_tls_pw may only log
#     in over TLS (`hostssl`, and `hostnossl ... reject` for it); prints FERRY_TEST_POSTGRES_CA,
#     FERRY_TEST_POSTGRES_OTHER_CA (a second CA that signed nothing here) and
#     FERRY_TEST_POSTGRES_TLS_URL. A server already running without TLS (started by an older
#     version of this script) is left alone: a warning says so and the TLS variables are not
#     printed (tests/sql_tls.rs then skips, or fails when CI=true).
# Everything else goes to stderr. Idempotent: when the server already answers with those
# credentials it only prints the line. It never touches the system's own cluster (port 5432).
#
# Stop the private server:  runuser -u postgres -- pg_ctl -D /tmp/ferry-test-postgres/data stop
#                           (pg_ctl is in /usr/lib/postgresql/<ver>/bin on Debian)
# Start from scratch:       stop it, then rm -rf /tmp/ferry-test-postgres
#
# Environment knobs:
#   FERRY_TEST_POSTGRES_PORT  TCP port (default 15432)
#   FERRY_TEST_POSTGRES_DIR   where the cluster, socket and log live (default /tmp/ferry-test-postgres)
#   FERRY_TEST_POSTGRES_WAIT  seconds to wait for the server to accept connections (default 60)
set -euo pipefail

host=127.0.0.1
port="${FERRY_TEST_POSTGRES_PORT:-15432}"
base="${FERRY_TEST_POSTGRES_DIR:-/tmp/ferry-test-postgres}"
wait_s="${FERRY_TEST_POSTGRES_WAIT:-60}"
user=ferry
password=ferry
url="postgres://$user:$password@$host:$port/postgres"

log() { echo "[setup/postgres] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
emit() {
  printf 'export FERRY_TEST_POSTGRES_URL=%q\n' "$1"
  emit_tls
}

if [ -n "${FERRY_TEST_POSTGRES_URL:-}" ]; then
  log "FERRY_TEST_POSTGRES_URL is already set; using it as is (and FERRY_TEST_POSTGRES_CA/_TLS_URL if set)"
  printf 'export FERRY_TEST_POSTGRES_URL=%q\n' "$FERRY_TEST_POSTGRES_URL"
  exit 0
fi

export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
case "$base" in /*) ;; *) base="$PWD/$base" ;; esac
# The postgres OS user may not be allowed into the current directory (psql/pg_ctl would warn).
cd /
datadir="$base/data"
pglog="$base/postgres.log"
tlsdir="$base/tls"
hba="$base/pg_hba.conf"
tls_user=ferry_tls
tls_password=ferry_tls_pw

# The directory with initdb, pg_ctl, postgres and psql: the one of pg_ctl on PATH, else the newest
# /usr/lib/postgresql/<ver>/bin.
find_bindir() {
  local p d best="" bestv=-1 v
  if p="$(command -v pg_ctl 2>/dev/null)"; then
    p="$(readlink -f "$p")"
    d="$(dirname "$p")"
    if [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then echo "$d"; return 0; fi
  fi
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ] && [ -x "$d/postgres" ] || continue
    v="$(basename "$(dirname "$d")")"
    v="${v%%.*}"
    [[ "$v" =~ ^[0-9]+$ ]] || v=0
    if [ "$v" -gt "$bestv" ]; then best="$d"; bestv="$v"; fi
  done
  [ -n "$best" ] && echo "$best"
}

psql_bin() {
  if [ -n "${bindir:-}" ] && [ -x "$bindir/psql" ]; then echo "$bindir/psql"; return 0; fi
  command -v psql 2>/dev/null
}

# Succeeds when ferry/ferry can log in over TCP.
ferry_login() {
  local psql
  psql="$(psql_bin)" || return 1
  PGPASSWORD="$password" PGCONNECT_TIMEOUT=3 timeout 10 "$psql" -X -q -A -t \
    "host=$host port=$port user=$user dbname=postgres sslmode=disable" -c 'SELECT 1' \
    >/dev/null 2>&1 </dev/null
}

as_root=0
[ "$(id -u)" = 0 ] && as_root=1
# Runs a command as the cluster's OS user (postgres when we are root, else ourselves).
as_pg() {
  if [ "$as_root" = 1 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Runs SQL (stdin) as the postgres superuser over this cluster's own socket (trust auth there).
super_sql() {
  as_pg env PGCONNECT_TIMEOUT=3 timeout 30 "$(psql_bin)" -X -q -A -t -v ON_ERROR_STOP=1 \
    -h "$base" -p "$port" -U postgres -d postgres -f -
}

port_open() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

cluster_running() {
  [ -n "${bindir:-}" ] && [ -f "$datadir/PG_VERSION" ] \
    && as_pg "$bindir/pg_ctl" -D "$datadir" status >/dev/null 2>&1 </dev/null
}

# A test CA, a server certificate for `localhost` signed by it (so a client that connects to
# 127.0.0.1 and checks the host name must refuse it), and a second CA that signed nothing here.
# Made once; kept across restarts. The key belongs to the cluster's OS user (PostgreSQL insists).
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
  openssl req -x509 "${ec[@]}" -days 3650 -subj "/CN=ferry test CA (postgres)" \
    -keyout "$d.new/ca-key.pem" -out "$d.new/ca.pem" >/dev/null 2>&1 </dev/null \
    || die "openssl could not make the test CA"
  openssl req -x509 "${ec[@]}" -days 3650 -subj "/CN=ferry other CA (postgres)" \
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
  chmod 755 "$d.new"
  if [ "$as_root" = 1 ]; then chown -R postgres: "$d.new"; fi
  rm -rf "$d" && mv "$d.new" "$d"
}

# This script's pg_hba.conf, used through -c hba_file at every start: the socket trusts, TCP
# needs a password, and the TLS-only role is refused on a connection without TLS.
write_hba() {
  as_pg tee "$hba" >/dev/null <<HBA
# Written by tests/setup/postgres.sh at every start (the data dir's pg_hba.conf is not used).
local     all          all                        trust
local     replication  all                        trust
hostnossl all          $tls_user  0.0.0.0/0       reject
hostnossl all          $tls_user  ::/0            reject
hostssl   all          $tls_user  127.0.0.1/32    scram-sha-256
hostssl   all          $tls_user  ::1/128         scram-sha-256
host      all          all        127.0.0.1/32    scram-sha-256
host      all          all        ::1/128         scram-sha-256
host      replication  all        127.0.0.1/32    scram-sha-256
host      replication  all        ::1/128         scram-sha-256
HBA
}

# Succeeds when the running server accepts TLS (ferry logs in with sslmode=require).
server_has_tls() {
  local psql
  psql="$(psql_bin)" || return 1
  PGPASSWORD="$password" PGCONNECT_TIMEOUT=3 timeout 10 "$psql" -X -q -A -t \
    "host=$host port=$port user=$user dbname=postgres sslmode=require" -c 'SELECT 1' \
    >/dev/null 2>&1 </dev/null
}

# Succeeds when ferry_tls logs in with the given sslmode.
tls_user_login() {
  PGPASSWORD="$tls_password" PGCONNECT_TIMEOUT=3 timeout 10 "$(psql_bin)" -X -q -A -t \
    "host=$host port=$port user=$tls_user dbname=postgres sslmode=$1" -c 'SELECT 1' \
    >/dev/null 2>&1 </dev/null
}

# Prints the TLS variables when the server has TLS and refuses ferry_tls without it; else warns.
emit_tls() {
  local stop="runuser -u postgres -- ${bindir:-<bindir>}/pg_ctl -D $datadir stop"
  if ! server_has_tls; then
    log "WARNING: the PostgreSQL on $host:$port has no TLS (it was started without ssl=on," \
        "e.g. by an older version of this script); it is left running as it is, and the TLS" \
        "tests (tests/sql_tls.rs) will skip. To enable TLS, stop it ($stop) and run this script again"
    return 0
  fi
  if [ ! -s "$tlsdir/ca.pem" ] || [ ! -s "$tlsdir/other-ca.pem" ]; then
    log "WARNING: the PostgreSQL on $host:$port has TLS but $tlsdir/ca.pem is missing; TLS tests will skip"
    return 0
  fi
  if ! tls_user_login require; then
    log "WARNING: $tls_user cannot log in over TLS on $host:$port; TLS tests will skip"
    return 0
  fi
  if tls_user_login disable; then
    log "WARNING: $tls_user logs in WITHOUT TLS on $host:$port (not started with this script's" \
        "pg_hba.conf); TLS tests will skip. Restart it ($stop) and run this script again"
    return 0
  fi
  printf 'export FERRY_TEST_POSTGRES_CA=%q\n' "$tlsdir/ca.pem"
  printf 'export FERRY_TEST_POSTGRES_OTHER_CA=%q\n' "$tlsdir/other-ca.pem"
  printf 'export FERRY_TEST_POSTGRES_TLS_URL=%q\n' \
    "postgres://$tls_user:$tls_password@$host:$port/postgres"
}

ensure_tls_role() {
  server_has_tls || return 0
  log "creating/refreshing role $tls_user (logs in over TLS only, see $hba)"
  super_sql >&2 <<SQL
SET client_min_messages = warning;
SET password_encryption = 'scram-sha-256';
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$tls_user') THEN
    CREATE ROLE $tls_user LOGIN PASSWORD '$tls_password';
  ELSE
    ALTER ROLE $tls_user LOGIN PASSWORD '$tls_password';
  END IF;
END
\$\$;
SQL
}

ensure_role() {
  log "creating/refreshing role $user (SUPERUSER)"
  super_sql >&2 <<SQL
SET client_min_messages = warning;
SET password_encryption = 'scram-sha-256';
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$user') THEN
    CREATE ROLE $user LOGIN SUPERUSER CREATEDB CREATEROLE PASSWORD '$password';
  ELSE
    ALTER ROLE $user LOGIN SUPERUSER CREATEDB CREATEROLE PASSWORD '$password';
  END IF;
END
\$\$;
SQL
}

finish() {
  ferry_login || die "role $user cannot log in on $host:$port"
  ensure_tls_role
  log "PostgreSQL answers on $host:$port as $user"
  emit "$url"
  exit 0
}

bindir="$(find_bindir || true)"

if ferry_login; then
  log "PostgreSQL already answers on $host:$port with $user/$password"
  if [ -n "$bindir" ] && cluster_running && echo 'SELECT 1;' | super_sql >/dev/null 2>&1; then
    ensure_tls_role || log "WARNING: could not create role $tls_user"
  fi
  emit "$url"
  exit 0
fi

# Install when missing.
if [ -z "$bindir" ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$as_root" = 1 ]; then
    log "installing postgresql with apt-get"
    # Keep the package's own cluster from being started: the tests use a private one.
    policy=/usr/sbin/policy-rc.d
    made_policy=0
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
      trap '[ "$made_policy" = 1 ] && rm -f "$policy"' EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends postgresql >&2
    if [ "$made_policy" = 1 ]; then rm -f "$policy"; made_policy=0; fi
    hash -r
    bindir="$(find_bindir || true)"
    [ -n "$bindir" ] || die "initdb/pg_ctl not found after installing postgresql"
  else
    die "PostgreSQL server binaries (initdb, pg_ctl) are missing and cannot be installed here (need root and apt-get)"
  fi
fi
[ -n "$(psql_bin)" ] || die "psql is missing (install postgresql-client)"
if [ "$as_root" = 1 ] && ! id postgres >/dev/null 2>&1; then
  die "there is no 'postgres' OS user to run the cluster as (PostgreSQL refuses to run as root)"
fi

mkdir -p "$base"
if [ "$as_root" = 1 ]; then chown postgres: "$base"; fi
chmod 700 "$base"
# One setup at a time (the lock fd is closed for the server so it is not held forever).
exec 9>"$base/.setup.lock"
if command -v flock >/dev/null 2>&1; then
  flock -w 300 9 || die "another setup holds $base/.setup.lock"
fi

if ferry_login; then
  log "PostgreSQL already answers on $host:$port with $user/$password"
  emit "$url"
  exit 0
fi

if port_open; then
  # Something listens. If it is our cluster (its socket answers), repair the role.
  if cluster_running && echo 'SELECT 1;' | super_sql >/dev/null 2>&1; then
    ensure_role
    finish
  fi
  die "port $port on $host is taken by something that does not accept $user/$password" \
      "(set FERRY_TEST_POSTGRES_PORT to use another port, or FERRY_TEST_POSTGRES_URL to use that server)"
fi

if [ -f "$datadir/PG_VERSION" ] && [ ! -e "$base/.initialised" ]; then
  log "removing a half-initialised cluster in $datadir"
  rm -rf "$datadir"
fi
if [ -f "$datadir/PG_VERSION" ] && [ "$(cat "$datadir/PG_VERSION")" != "$("$bindir/postgres" -V | sed -E 's/^[^0-9]*([0-9]+).*/\1/')" ]; then
  log "the cluster in $datadir was made by another PostgreSQL version; making a new one"
  rm -rf "$datadir" "$base/.initialised"
fi

if [ ! -f "$datadir/PG_VERSION" ]; then
  rm -rf "$datadir"
  log "initialising a new cluster in $datadir ($("$bindir/postgres" -V))"
  locale_opt=(--no-locale)
  if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then locale_opt=(--locale=C.UTF-8); fi
  as_pg "$bindir/initdb" -D "$datadir" -U postgres -E UTF8 "${locale_opt[@]}" \
    --auth-local=trust --auth-host=scram-sha-256 --no-sync \
    >"$base/initdb.log" 2>&1 </dev/null 9>&- \
    || { cat "$base/initdb.log" >&2; die "initdb failed"; }
  as_pg tee -a "$datadir/postgresql.conf" >/dev/null <<'CONF'

# --- ferry tests (tests/setup/postgres.sh): speed over durability ---
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 256MB
max_wal_size = 4GB
checkpoint_timeout = 30min
password_encryption = scram-sha-256
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
CONF
  as_pg touch "$base/.initialised"
fi

if ! cluster_running; then
  make_certs
  write_hba
  log "starting PostgreSQL on $host:$port (cluster $datadir, log $pglog)"
  # pg_ctl detaches the server (its output goes to the log); ours goes to stderr so that
  # `eval "$(bash postgres.sh)"` does not wait for it.
  as_pg "$bindir/pg_ctl" -D "$datadir" -l "$pglog" -w -t "$wait_s" \
    -o "-c listen_addresses=$host -p $port -c unix_socket_directories='$base' -c ssl=on -c ssl_cert_file='$tlsdir/server-cert.pem' -c ssl_key_file='$tlsdir/server-key.pem' -c hba_file='$hba'" \
    start >&2 </dev/null 9>&- \
    || { log "the end of $pglog:"; tail -n 40 "$pglog" >&2 2>/dev/null || true
         die "PostgreSQL did not start within ${wait_s}s"; }
else
  log "the cluster in $datadir is running; waiting for it to accept connections"
fi

deadline=$((SECONDS + wait_s))
until echo 'SELECT 1;' | super_sql >/dev/null 2>&1; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    log "the end of $pglog:"; tail -n 40 "$pglog" >&2 2>/dev/null || true
    die "PostgreSQL did not accept connections within ${wait_s}s"
  fi
  sleep 0.2
done

ensure_role
finish
