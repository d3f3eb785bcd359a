#!/usr/bin/env bash
# Makes sure an Azurite blob service (Azure Storage emulator) answers on 127.0.0.1:10000.
#
# Run by tests/run.sh (as root on a fresh Debian machine, or anywhere azurite-blob is on PATH):
#   - installs azurite globally with npm when `azurite-blob` is missing (and node/npm with apt-get
#     when those are missing too),
#   - starts `azurite-blob` in the background with a temp --location when nothing answers on the
#     port, and waits until it answers,
#   - prints `export FERRY_TEST_AZURITE=http://127.0.0.1:10000/devstoreaccount1` on stdout.
# Everything else goes to stderr. Idempotent: when Azurite already answers it only prints the line.
#
# Environment knobs:
#   AZURITE_PORT     port to use (default 10000)
#   AZURITE_VERSION  npm version to install (default 3.35.0, the newest that runs on node < 22;
#                    3.36+ declares node >= 21/22)
set -euo pipefail

host=127.0.0.1
port="${AZURITE_PORT:-10000}"
version="${AZURITE_VERSION:-3.35.0}"
account=devstoreaccount1
url="http://$host:$port/$account"

log() { echo "[setup/azurite] $*" >&2; }

# Prints the HTTP status of a GET on the blob endpoint ("000" when nothing answers).
http_status() {
  if command -v curl >/dev/null 2>&1; then
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url?comp=list" 2>/dev/null || true
  else
    # No curl: speak HTTP/1.0 over bash's /dev/tcp.
    (
      exec 3<>"/dev/tcp/$host/$port" || exit 0
      printf 'GET /%s?comp=list HTTP/1.0\r\nHost: %s:%s\r\n\r\n' "$account" "$host" "$port" >&3
      timeout 2 head -n 1 <&3 | awk '{print $2}'
    ) 2>/dev/null || true
  fi
}

answers() {
  local s
  s="$(http_status)"
  [ -n "$s" ] && [ "$s" != "000" ]
}

# --- Second instance: HTTPS with `--oauth basic`, for bearer-token tests -----------------------
# Azurite accepts OAuth bearer tokens only over HTTPS and only with `--oauth basic`
# (dist/src/blob/authentication/BlobTokenAuthenticator.js: "Authentication scheme Bearer is not
# allowed with HTTP."). This instance listens on 127.0.0.1:$AZURITE_OAUTH_PORT (default 10010)
# with a server certificate for 127.0.0.1/localhost signed by a test CA made here with openssl,
# and prints
#   export FERRY_TEST_AZURITE_OAUTH=https://127.0.0.1:10010/devstoreaccount1
#   export FERRY_TEST_AZURITE_CA=<dir>/ca.pem
# The instance on :10000 is never touched by this part. A failure here is logged and leaves the
# two variables unset (the bearer tests then skip, and fail under CI=true).
oauth_port="${AZURITE_OAUTH_PORT:-10010}"
oauth_dir="${AZURITE_OAUTH_DIR:-${TMPDIR:-/tmp}/ferry-azurite-oauth}"
oauth_url="https://$host:$oauth_port/$account"

oauth_answers() {
  [ -f "$oauth_dir/ca.pem" ] || return 1
  local s
  s="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$oauth_dir/ca.pem" \
    "$oauth_url?comp=list" 2>/dev/null || true)"
  [ -n "$s" ] && [ "$s" != "000" ]
}

make_test_ca() {
  if ! command -v openssl >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      log "installing openssl with apt-get"
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >&2
    else
      log "openssl is missing and cannot be installed here"
      return 1
    fi
  fi
  mkdir -p "$oauth_dir"
  (
    cd "$oauth_dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=ferry test Azurite CA" \
      -keyout ca.key -out ca.pem >/dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
      -keyout server.key -out server.csr >/dev/null 2>&1
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile server.ext -out server.pem >/dev/null 2>&1
    # A second CA that signed nothing here: the "wrong CA" of the tests.
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=ferry unrelated CA" \
      -keyout other-ca.key -out other-ca.pem >/dev/null 2>&1
  )
}

start_oauth() {
  if oauth_answers; then
    log "Azurite (HTTPS, oauth basic) already answers on $host:$oauth_port"
  else
    if (exec 3<>"/dev/tcp/$host/$oauth_port") 2>/dev/null; then
      log "port $oauth_port is taken by something that does not answer HTTPS with our CA; no OAuth Azurite"
      return 0
    fi
    if ! command -v curl >/dev/null 2>&1; then
      log "curl is missing; not starting the OAuth Azurite"
      return 0
    fi
    if [ ! -f "$oauth_dir/server.pem" ]; then
      make_test_ca || { log "could not make the test CA; no OAuth Azurite"; return 0; }
    fi
    mkdir -p "$oauth_dir/data"
    log "starting azurite-blob with HTTPS and --oauth basic on $host:$oauth_port (in $oauth_dir)"
    setsid nohup azurite-blob \
      --blobHost "$host" --blobPort "$oauth_port" \
      --location "$oauth_dir/data" \
      --cert "$oauth_dir/server.pem" --key "$oauth_dir/server.key" --oauth basic \
      --skipApiVersionCheck --loose \
      >"$oauth_dir/azurite.log" 2>&1 </dev/null &
    local opid=$!
    echo "$opid" >"$oauth_dir/azurite.pid"
    local up=0
    for _ in $(seq 1 150); do
      if oauth_answers; then up=1; break; fi
      if ! kill -0 "$opid" 2>/dev/null; then break; fi
      sleep 0.2
    done
    if [ "$up" != 1 ]; then
      log "the OAuth Azurite did not come up; its output:"
      cat "$oauth_dir/azurite.log" >&2 || true
      return 0
    fi
    log "Azurite (HTTPS, oauth basic) answers (pid $opid)"
  fi
  echo "export FERRY_TEST_AZURITE_OAUTH=$oauth_url"
  echo "export FERRY_TEST_AZURITE_CA=$oauth_dir/ca.pem"
}

if answers; then
  log "Azurite already answers on $host:$port"
  echo "export FERRY_TEST_AZURITE=$url"
  start_oauth
  exit 0
fi

# Something that is not HTTP may hold the port; then starting Azurite would fail anyway.
if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
  log "port $port is taken by something that does not answer HTTP; not starting Azurite"
  exit 1
fi

if ! command -v azurite-blob >/dev/null 2>&1; then
  if ! command -v npm >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      log "installing nodejs and npm with apt-get"
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2
    else
      log "npm is missing and cannot be installed here (need root and apt-get)"
      exit 1
    fi
  fi
  log "installing azurite@$version with npm (global)"
  npm install -g --no-fund --no-audit --loglevel=error "azurite@$version" >&2
  hash -r
  if ! command -v azurite-blob >/dev/null 2>&1; then
    bin="$(npm prefix -g 2>/dev/null)/bin"
    if [ -x "$bin/azurite-blob" ]; then
      export PATH="$bin:$PATH"
    else
      log "azurite-blob not found after npm install"
      exit 1
    fi
  fi
fi

location="$(mktemp -d "${TMPDIR:-/tmp}/ferry-azurite.XXXXXX")"
log "starting azurite-blob on $host:$port (data and log in $location)"
# setsid + nohup: keep running after this script (and tests/run.sh) exits.
setsid nohup azurite-blob \
  --blobHost "$host" --blobPort "$port" \
  --location "$location" \
  --skipApiVersionCheck --loose \
  >"$location/azurite.log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$location/azurite.pid"

for _ in $(seq 1 150); do
  if answers; then
    log "Azurite answers (pid $pid)"
    echo "export FERRY_TEST_AZURITE=$url"
    start_oauth
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    log "azurite-blob exited early; its output:"
    cat "$location/azurite.log" >&2 || true
    exit 1
  fi
  sleep 0.2
done

log "Azurite did not answer within 30s; its output:"
cat "$location/azurite.log" >&2 || true
exit 1
