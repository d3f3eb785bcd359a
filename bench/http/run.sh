#!/usr/bin/env bash
# HTTP client benchmark: ferry.http.get with concurrency 64 against a local nginx, and wrk on
# the same server for reference. See bench/http/README.md.
#   bench/http/run.sh [--no-build] [--requests N]
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
FERRY="$REPO/target-bench/release/ferry"
N=100000
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) build=0 ;;
    --requests) N="$2"; shift ;;
  esac
  shift
done
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2 && apt-get install -y -q nginx-light wrk >&2 || apt-get install -y -q nginx wrk >&2
fi
if [ "$build" = 1 ]; then
  (cd "$REPO" && CARGO_TARGET_DIR="$REPO/target-bench" cargo build --release --locked >&2)
fi
WORK=$(mktemp -d /tmp/ferry-bench-http.XXXXXX)
cat > "$WORK/nginx.conf" <<CONF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $WORK/body;
  server {
    listen 127.0.0.1:18080;
    location / { default_type application/json; return 200 '{"ok":true}'; }
  }
}
CONF
nginx -c "$WORK/nginx.conf"
trap 'nginx -c "$WORK/nginx.conf" -s stop 2>/dev/null; rm -rf "$WORK"' EXIT
sleep 0.3
now() { date +%s.%N; }
t0=$(now); "$FERRY" run "$REPO/bench/http/client.lua" -q --state "$WORK/s0" -p url=http://127.0.0.1:18080/ -p requests=1 >/dev/null; t1=$(now)
t2=$(now); ok=$("$FERRY" run "$REPO/bench/http/client.lua" -q --state "$WORK/s1" -p url=http://127.0.0.1:18080/ -p requests="$N" -p concurrency=64 | tail -1); t3=$(now)
wrk_rps=$(wrk -t2 -c64 -d10s http://127.0.0.1:18080/ | awk '/Requests\/sec/ {print $2}')
python3 - "$t0" "$t1" "$t2" "$t3" "$ok" "$N" "$wrk_rps" <<'PY'
import sys
t0, t1, t2, t3 = map(float, sys.argv[1:5]); ok, n = int(sys.argv[5]), int(sys.argv[6]); wrk = float(sys.argv[7])
startup = t1 - t0
secs = (t3 - t2) - startup
print("| client | requests | ok | seconds | requests/s |")
print("|---|--:|--:|--:|--:|")
print(f"| ferry.http.get, concurrency 64 | {n} | {ok} | {secs:.2f} | {n/secs:,.0f} |")
print(f"| wrk -t2 -c64 (reference: what the server serves) | - | - | 10 | {wrk:,.0f} |")
print(f"(ferry startup of {startup:.2f} s subtracted)")
PY
