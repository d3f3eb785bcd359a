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

if answers; then
  log "Azurite already answers on $host:$port"
  echo "export FERRY_TEST_AZURITE=$url"
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
