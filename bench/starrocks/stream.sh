#!/usr/bin/env bash
# ferry's side of starrocks-sync without the StarRocks double: SELECT ... PARTITION from MariaDB,
# encoded as CSV and streamed chunked into a Stream Load endpoint that ingests infinitely fast
# (sink.py counts the rows and discards them). This is the rate ferry itself can feed a cluster
# at; the full sync through the double (run.sh) is bound by the double's ingest. Prints a table.
#
#   bench/starrocks/stream.sh                  # 300,000 rows in 3 partitions, 3 rounds
#   ROWS=1000000 ROUNDS=5 bench/starrocks/stream.sh
#   FERRY=target/release/ferry bench/starrocks/stream.sh   # that binary, no build
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
log() { echo "[bench/starrocks/stream] $*" >&2; }
. "$REPO/bench/lib.sh"
cd "$REPO"
ROWS="${ROWS:-300000}"
ROUNDS="${ROUNDS:-3}"
PORT="${PORT:-18031}"
if [ -z "${FERRY:-}" ]; then
  bench_ensure_cargo
  CARGO_TARGET_DIR="$REPO/target-bench" cargo build --release --locked >&2
  FERRY="$REPO/target-bench/release/ferry"
fi
FERRY="$(cd "$(dirname "$FERRY")" && pwd)/$(basename "$FERRY")"
[ -x /usr/bin/time ] || bench_apt_install time
# The server: the private MariaDB of tests/setup/mariadb.sh (as bench/sql/run.sh uses it).
bench_mariadb
work="$(mktemp -d /tmp/ferry-bench-srstream.XXXXXX)"
sink_pid=""
cleanup() { [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# The source: shop.orders of tests/starrocks/site.rs as a partitioned MariaDB table, filled as
# the figures test fills it (90 days from 2024-01-01: three partitions of about a third each).
have="$(bench_sql -e "SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA='bench_sr' AND TABLE_NAME='orders'" 2>/dev/null || true)"
if [ "$have" != "rows=$ROWS" ]; then
  log "generating bench_sr.orders, $ROWS rows"
  bench_sql -e "CREATE DATABASE IF NOT EXISTS bench_sr; DROP TABLE IF EXISTS bench_sr.orders;
    CREATE TABLE bench_sr.orders (id BIGINT NOT NULL, dt DATE NOT NULL, customer VARCHAR(64) NULL,
      amount DECIMAL(10,2) NULL, note VARCHAR(200) NULL, created DATETIME NULL) ENGINE=InnoDB
    PARTITION BY RANGE COLUMNS(dt) (PARTITION p202401 VALUES LESS THAN ('2024-02-01'),
      PARTITION p202402 VALUES LESS THAN ('2024-03-01'), PARTITION p202403 VALUES LESS THAN ('2024-04-01'));
    INSERT INTO bench_sr.orders SELECT seq + 100, DATE_ADD('2024-01-01', INTERVAL seq % 90 DAY),
      CONCAT('customer ', seq % 1000), (seq % 10000) / 100, REPEAT('x', seq % 50),
      DATE_ADD('2024-01-01 00:00:00', INTERVAL seq SECOND) FROM bench_sr.seq_1_to_$ROWS;
    ALTER TABLE bench_sr.orders COMMENT = 'rows=$ROWS'"
fi
bench_sql -e "SELECT COUNT(*) FROM bench_sr.orders" >/dev/null # into the buffer pool

python3 "$REPO/bench/starrocks/sink.py" "$PORT" 2 >"$work/sink.log" 2>&1 &
sink_pid=$!
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

mpid="$(bench_mariadb_pid)"
sub() { echo "$1 - $2" | bc; }
log "load: $(uptime)"
printf "| round | what | seconds | rows | rows/s | MB sent | ferry CPU s | ferry peak RSS MB | mariadbd CPU s | sink CPU s |\n"
printf "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|\n"
for round in $(seq 1 "$ROUNDS"); do
  # Reference: the same three SELECTs through the mariadb client into /dev/null, side by side.
  m0="$(bench_cpu_seconds "$mpid")"; t0="$(date +%s.%N)"
  pids=()
  for part in p202401 p202402 p202403; do
    bench_sql --quick -e "SELECT * FROM bench_sr.orders PARTITION ($part)" >/dev/null &
    pids+=($!)
  done
  wait "${pids[@]}" # not a bare wait: the sink is a background job too
  t1="$(date +%s.%N)"; m1="$(bench_cpu_seconds "$mpid")"
  printf "| %d | mariadb client, 3 SELECTs into /dev/null | %.2f | %d | %.0f | - | - | - | %.2f | - |\n" \
    "$round" "$(sub "$t1" "$t0")" "$ROWS" "$(echo "$ROWS / ($t1 - $t0)" | bc -l)" "$(sub "$m1" "$m0")"

  m0="$(bench_cpu_seconds "$mpid")"; s0="$(bench_cpu_seconds "$sink_pid")"; t0="$(date +%s.%N)"
  env -u AWS_CA_BUNDLE /usr/bin/time -f "%e %M %U %S" -o "$work/time" "$FERRY" run \
    "$REPO/bench/starrocks/stream.lua" -q --yes --state "$work/state" --fresh \
    -p source="$BASE_URL/" -p sink="http://127.0.0.1:$PORT" \
    >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  t1="$(date +%s.%N)"; m1="$(bench_cpu_seconds "$mpid")"; s1="$(bench_cpu_seconds "$sink_pid")"
  read -r _ rss usr sys <"$work/time"
  out="$(tail -n 1 "$work/out")"
  rows="$(echo "$out" | sed 's/.*"rows":\([0-9]*\).*/\1/')"
  loaded="$(echo "$out" | sed 's/.*"loaded":\([0-9]*\).*/\1/')"
  bytes="$(echo "$out" | sed 's/.*"bytes":\([0-9]*\).*/\1/')"
  [ "$rows" = "$ROWS" ] && [ "$loaded" = "$ROWS" ] || { log "CHECK: sent $rows, sink counted $loaded, expected $ROWS"; exit 1; }
  printf "| %d | ferry: 3 partitions streamed as CSV, in flight together | %.2f | %d | %.0f | %.1f | %.2f | %.0f | %.2f | %.2f |\n" \
    "$round" "$(sub "$t1" "$t0")" "$rows" "$(echo "$rows / ($t1 - $t0)" | bc -l)" \
    "$(echo "$bytes / 1000000" | bc -l)" "$(echo "$usr + $sys" | bc)" "$(echo "$rss * 1024 / 1000000" | bc -l)" \
    "$(sub "$m1" "$m0")" "$(sub "$s1" "$s0")"
done
log "load: $(uptime)"
