#!/usr/bin/env bash
# HTTP client throughput: N small GETs with ferry.http.get through ferry.task.parallel
# (concurrency 64) against a local nginx, and wrk -t2 -c64 against the same server for
# reference. Prints one markdown table. See bench/http/README.md.
#
#   bench/http/run.sh                    # full run: about 2 minutes, plus a first build
#   bench/http/run.sh --quick            # 10,000 requests, wrk for 3 s, one round
#
# Options: --requests N (100000), --repeat R (rounds, 3; the table gives medians),
# --workers W (nginx worker_processes, 1), --duration S (wrk seconds, 10), --port P (18080),
# --perf (also profile one ferry run with perf and print its top symbols on stderr),
# --no-setup (no apt-get, no cargo build), --keep (leave the work folder).
#
# Works on a fresh Debian machine as root: installs nginx and wrk (Debian's packages), a C
# compiler when missing (cargo must be there), and builds ferry with CARGO_TARGET_DIR=target-bench.
# nginx runs from a private config on 127.0.0.1 only, started and stopped by this script.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/../.." && pwd)"
TARGET="$REPO/target-bench"
FERRY="$TARGET/release/ferry"
LUA="$REPO/bench/http/client.lua"

N=100000
repeat=3
workers=1
duration=10
port=18080
perf=0
setup=1
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) N=10000; repeat=1; duration=3 ;;
    --requests) N="$2"; shift ;;
    --repeat) repeat="$2"; shift ;;
    --workers) workers="$2"; shift ;;
    --duration) duration="$2"; shift ;;
    --port) port="$2"; shift ;;
    --perf) perf=1 ;;
    --no-setup) setup=0 ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
log() { echo "[bench/http] $*" >&2; }
# shellcheck source=../lib.sh
source "$REPO/bench/lib.sh"
# Loopback only: no proxy may see these requests.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY

# Setup --------------------------------------------------------------------------------------
if [ "$setup" = 1 ]; then
  missing=()
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  command -v wrk >/dev/null || missing+=(wrk)
  if [ "$perf" = 1 ] && ! command -v perf >/dev/null; then missing+=(linux-perf); fi
  command -v cc >/dev/null || missing+=(build-essential)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    bench_apt_install "${missing[@]}"
  fi
  bench_ensure_cargo
  bench_build_ferry
fi
export PATH="$PATH:/usr/sbin:/sbin"
for b in "$FERRY" nginx wrk; do
  command -v "$b" >/dev/null || { echo "missing $b (run without --no-setup)" >&2; exit 1; }
done

# nginx --------------------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/ferry-bench-http.XXXXXX)
chmod 755 "$WORK"   # the workers run as nobody and read www/
mkdir -p "$WORK/www/static" "$WORK/tmp"
# The static file: 1 KiB of JSON.
{ printf '{"pad":"'; head -c 1012 /dev/zero | tr '\0' 'x'; printf '"}\n'; } >"$WORK/www/static/small.json"
cat >"$WORK/nginx.conf" <<CONF
worker_processes $workers;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path $WORK/tmp/body;
  proxy_temp_path $WORK/tmp/proxy;
  fastcgi_temp_path $WORK/tmp/fastcgi;
  uwsgi_temp_path $WORK/tmp/uwsgi;
  scgi_temp_path $WORK/tmp/scgi;
  server {
    listen 127.0.0.1:$port;
    root $WORK/www;
    location = /ok { default_type application/json; return 200 '{"ok":true}'; }
    location /static/ { default_type application/json; }
  }
}
CONF
nginx -t -p "$WORK/" -e "$WORK/error.log" -c "$WORK/nginx.conf" 2>/dev/null \
  || { nginx -t -p "$WORK/" -e "$WORK/error.log" -c "$WORK/nginx.conf"; exit 1; }
nginx -p "$WORK/" -e "$WORK/error.log" -c "$WORK/nginx.conf" &
NGINX_PID=$!
cleanup() {
  kill -TERM "$NGINX_PID" 2>/dev/null || true
  wait "$NGINX_PID" 2>/dev/null || true
  if [ "$keep" = 1 ]; then log "work folder kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
for _ in $(seq 1 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "nginx did not start:" >&2; cat "$WORK/error.log" >&2; exit 1; }
BASE="http://127.0.0.1:$port"
log "nginx $(nginx -v 2>&1 | sed 's/.*\///') on $BASE, worker_processes $workers (master pid $NGINX_PID)"

# CPU ticks (user + system) of nginx's workers, from /proc.
TICK=$(getconf CLK_TCK)
nginx_ticks() {
  local s=0 f st
  for f in /proc/[0-9]*/stat; do
    st=$(cat "$f" 2>/dev/null) || continue
    # Fields after "(comm)": 4 ppid, 14 utime, 15 stime.
    set -- ${st##*) }
    [ "${2:-}" = "$NGINX_PID" ] && s=$((s + ${12} + ${13}))
  done
  echo "$s"
}

now() { date +%s.%N; }
jget() { sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p" <<<"$2"; }
RESULTS="$WORK/results.tsv"
: >"$RESULTS"

# ferry_run URL N: one process; echoes "wall user sys ok failed retried".
ferry_run() {
  local out tf
  tf="$WORK/time.$$"
  local TIMEFORMAT='%R %U %S'
  { time "$FERRY" run "$LUA" -q --state "$WORK/state" -p url="$1" -p requests="$2" -p concurrency=64 \
      >"$WORK/ferry.out" 2>"$WORK/ferry.err" ; } 2>"$tf"
  out=$(tail -1 "$WORK/ferry.out")
  echo "$(cat "$tf") $(jget ok "$out") $(jget failed "$out") $(jget retried "$out")"
}

# Warm-up (page cache, connection set-up paths), not measured.
ferry_run "$BASE/ok" 2000 >/dev/null
wrk -t2 -c64 -d1s "$BASE/ok" >/dev/null

for round in $(seq 1 "$repeat"); do
  # Start-up cost: the same script with 0 requests.
  read -r s_wall _ <<<"$(ferry_run "$BASE/ok" 0)"
  printf 'startup\t-\t%s\t0\t0\t%s\t0\t0\n' "$round" "$s_wall" >>"$RESULTS"
  for path in /ok /static/small.json; do
    sync
    t0=$(nginx_ticks)
    read -r wall user sys ok failed retried <<<"$(ferry_run "$BASE$path" "$N")"
    t1=$(nginx_ticks)
    secs=$(awk -v w="$wall" -v s="$s_wall" 'BEGIN { printf "%.3f", w - s }')
    ncpu=$(awk -v a="$t0" -v b="$t1" -v k="$TICK" 'BEGIN { printf "%.2f", (b - a) / k }')
    ccpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    log "round $round ferry $path: $ok ok, $failed failed, $retried retried, ${wall}s wall - ${s_wall}s start-up, ferry CPU ${ccpu}s, nginx CPU ${ncpu}s"
    printf 'ferry\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$path" "$round" "$N" "$((N - ok))" "$secs" "$ccpu" "$ncpu" >>"$RESULTS"
  done
  for path in /ok /static/small.json; do
    t0=$(nginx_ticks)
    TIMEFORMAT='%R %U %S'
    { time wrk -t2 -c64 -d"${duration}s" "$BASE$path" >"$WORK/wrk.out" 2>&1 ; } 2>"$WORK/wrk.time"
    t1=$(nginx_ticks)
    read -r _ user sys <"$WORK/wrk.time"
    # "  1012345 requests in 10.00s, 150.2MB read" and "  Non-2xx or 3xx responses: N"
    read -r reqs wsecs <<<"$(awk '/requests in/ { r = $1; s = $4; sub(/s,?$/, "", s); print r, s }' "$WORK/wrk.out")"
    bad=$(awk '/Non-2xx|Socket errors/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) { sub(/,/, "", $i); n += $i } } END { print n + 0 }' "$WORK/wrk.out")
    ncpu=$(awk -v a="$t0" -v b="$t1" -v k="$TICK" 'BEGIN { printf "%.2f", (b - a) / k }')
    ccpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    log "round $round wrk $path: $reqs requests in ${wsecs}s, $bad errors, wrk CPU ${ccpu}s, nginx CPU ${ncpu}s"
    printf 'wrk\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$path" "$round" "$reqs" "$bad" "$wsecs" "$ccpu" "$ncpu" >>"$RESULTS"
  done
done

if [ "$perf" = 1 ]; then
  if command -v perf >/dev/null; then
    log "perf: profiling one ferry run of $N requests to /ok"
    perf record -q -F 999 -g -o "$WORK/perf.data" -- "$FERRY" run "$LUA" -q --state "$WORK/state" \
      -p url="$BASE/ok" -p requests="$N" -p concurrency=64 >/dev/null 2>&1 || true
    log "perf: self time by binary"
    perf report -i "$WORK/perf.data" --stdio --no-children -g none --sort dso 2>/dev/null \
      | grep -E '^ +[0-9]' | sed 's/ *$//' | head -8 >&2 || true
    log "perf: top 30 symbols (self time)"
    perf report -i "$WORK/perf.data" --stdio --no-children -g none --sort dso,symbol 2>/dev/null \
      | grep -E '^ +[0-9]' | cut -c1-140 | sed "s/ *$//" | head -30 >&2 || true
  else
    log "perf not found (Debian: linux-perf)"
  fi
fi

# Table: medians over the rounds --------------------------------------------------------------
echo
echo "| client | URL | requests per run | errors | seconds | requests/s | client CPU s | nginx CPU s | client CPU µs/request | nginx CPU µs/request |"
echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"
awk -F'\t' -v conc=64 -v dur="$duration" '
function median(s,   a, n, i, j, t) {
  n = split(s, a, " ")
  for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
  return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function commas(x,   s, o) { s = sprintf("%.0f", x); o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) }; return s o }
$1 == "startup" { st = st " " $6; next }
{
  k = $1 SUBSEP $2
  if (!(k in seen)) { seen[k] = 1; order[++n] = k }
  req[k] = req[k] " " $4; err[k] = err[k] " " $5; sec[k] = sec[k] " " $6; rps[k] = rps[k] " " ($4 / $6)
  ccpu[k] = ccpu[k] " " $7; ncpu[k] = ncpu[k] " " $8
  cus[k] = cus[k] " " (1e6 * $7 / $4); nus[k] = nus[k] " " (1e6 * $8 / $4)
}
END {
  for (i = 1; i <= n; i++) {
    k = order[i]; split(k, p, SUBSEP)
    name = (p[1] == "ferry") ? "ferry.http.get, task.parallel concurrency " conc : "wrk -t2 -c" conc " -d" dur "s (reference)"
    printf "| %s | %s | %s | %s | %.2f | %s | %.2f | %.2f | %.1f | %.1f |\n", name, p[2], commas(median(req[k])), commas(median(err[k])),
      median(sec[k]), commas(median(rps[k])), median(ccpu[k]), median(ncpu[k]), median(cus[k]), median(nus[k])
  }
  printf "\nferry start-up (0 requests, subtracted from ferry seconds): median %.3f s\n", median(st)
}' "$RESULTS"
