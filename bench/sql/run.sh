#!/usr/bin/env bash
# SQL copy benchmark: ferry.sql.copy_table against the mydumper | myloader pipeline, same table,
# same MariaDB server on loopback, same thread count. Prints one table (markdown) at the end.
# See bench/sql/README.md.
#
#   bench/sql/run.sh                      # 1,000,000 rows, threads 4 and 2, batches 1000 and 5000
#   bench/sql/run.sh --repeat 9           # each measurement 9 times (default 5)
#   bench/sql/run.sh --threads 4 --batches 5000 --repeat 1   # a quick single pass
#
# Options: --rows N (1000000), --threads LIST (4,2), --batches LIST (ferry batch sizes;
# 1000,5000), --repeat N (5), --chunk N (mydumper --rows; 100000), --work DIR
# (/tmp/ferry-bench-sql: logs, results), --dump-dir DIR (mydumper's output; default
# /dev/shm/ferry-bench-sql-dump.PID, a tmpfs), --regen (rebuild the source table), --no-setup (skip
# apt installs and the ferry build), --ferry PATH (benchmark this ferry binary instead of
# target-bench/release/ferry; implies no ferry build), --cases LIST (mysql,pg; default mysql:
# "mysql" is ferry against mydumper|myloader into MariaDB, "pg" is MySQL -> PostgreSQL, ferry
# against pgloader, into the private PostgreSQL of tests/setup/postgres.sh), --db-prefix NAME
# (bench: the databases are NAME_src, NAME_dst_ferry, ...; another prefix keeps two benchmarks on
# one server apart).
#
# The server is whatever tests/setup/mariadb.sh gives: FERRY_TEST_MYSQL_URL when set, else the
# private instance on FERRY_TEST_MARIADB_PORT (13306) in FERRY_TEST_MARIADB_DIR.
#
# Works on a fresh Debian machine as root: installs mydumper, GNU time, the MariaDB server (via
# tests/setup/mariadb.sh, which starts a private tuned server on 127.0.0.1:13306) and a Rust
# toolchain when missing, and builds ferry into target-bench/ (never target/).
set -euo pipefail

SQL_DIR="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$SQL_DIR/../.." && pwd)"
TARGET="$REPO/target-bench"
LUA="$SQL_DIR/copy.lua"

rows=1000000
threads_list="4,2"
batches_list="1000,5000"
repeat=5
chunk=100000
work="/tmp/ferry-bench-sql"
dump_dir=""
regen=0
setup=1
ferry_bin=""
cases="mysql"
prefix="bench"
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) rows="$2"; shift ;;
    --threads) threads_list="$2"; shift ;;
    --batches) batches_list="$2"; shift ;;
    --repeat) repeat="$2"; shift ;;
    --chunk) chunk="$2"; shift ;;
    --work) work="$2"; shift ;;
    --dump-dir) dump_dir="$2"; shift ;;
    --regen) regen=1 ;;
    --no-setup) setup=0 ;;
    --ferry) ferry_bin="$2"; shift ;;
    --cases) cases="$2"; shift ;;
    --db-prefix) prefix="$2"; shift ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
IFS=',' read -r -a THREADS <<<"$threads_list"
IFS=',' read -r -a BATCHES <<<"$batches_list"
case_on() { [[ ",$cases," == *",$1,"* ]]; }

log() { echo "[bench/sql] $(date +%H:%M:%S) $*" >&2; }
# shellcheck source=../lib.sh
source "$REPO/bench/lib.sh"
die() { log "ERROR: $*"; exit 1; }

# Setup -------------------------------------------------------------------------------------

if [ "$setup" = 1 ]; then
  missing=()
  command -v mydumper >/dev/null || missing+=(mydumper)
  if case_on pg; then command -v pgloader >/dev/null || missing+=(pgloader); fi
  [ -x /usr/bin/time ] || missing+=(time)
  command -v cc >/dev/null || missing+=(build-essential)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    bench_apt_install "${missing[@]}"
  fi
  bench_ensure_cargo
  if [ -z "$ferry_bin" ]; then
    bench_build_ferry
  fi
fi
FERRY="${ferry_bin:-$TARGET/release/ferry}"
need=("$FERRY" /usr/bin/time)
case_on mysql && need+=(mydumper myloader)
case_on pg && need+=(pgloader psql)
for b in "${need[@]}"; do
  command -v "$b" >/dev/null || die "missing $b (run without --no-setup)"
done

# The server: a private MariaDB on 127.0.0.1:13306 (or whatever FERRY_TEST_MYSQL_URL names).
bench_mariadb
sql() { bench_sql "$@"; }
# PostgreSQL for the pg case: the private server of tests/setup/postgres.sh (127.0.0.1:15432).
if case_on pg; then
  eval "$(bash "$REPO/tests/setup/postgres.sh")"
  pg_url="${FERRY_TEST_POSTGRES_URL:?tests/setup/postgres.sh printed no URL}"
  PG_BASE="${pg_url%/*}"
  psql_do() { psql -X -q -v ON_ERROR_STOP=1 "$PG_BASE/$1" "${@:2}"; }
fi
status_var() { sql -e "SHOW GLOBAL STATUS LIKE '$1'" | awk '{print $2}'; }

mkdir -p "$work"
work="$(cd "$work" && pwd)"
LOGS="$work/logs"
RESULTS="$work/results.tsv"
mkdir -p "$LOGS"
: > "$RESULTS"
if [ -z "$dump_dir" ]; then
  # One folder per run (two runs at once must not remove each other's dump), removed at exit.
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then dump_dir="/dev/shm/ferry-bench-sql-dump.$$"; else dump_dir="$work/dump.$$"; fi
  trap 'rm -rf "$dump_dir"' EXIT
fi

# CPU seconds (user + system) of the server process, when it runs on this machine.
server_pid="$(bench_mariadb_pid)"
server_cpu() { bench_cpu_seconds "$server_pid"; }
now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "" || b == "") print ""; else printf "%.2f", a - b }'; }

# Data --------------------------------------------------------------------------------------
# ${prefix}_src.t: ROWS rows of (id, 32-char hex, ~23-char e-mail, 100 bytes of binary), made by the
# server itself from the Sequence engine. Kept between runs (the table comment records ROWS).
COLS="id BIGINT NOT NULL PRIMARY KEY, a VARCHAR(64) NOT NULL, b VARCHAR(64) NOT NULL, v VARBINARY(100) NOT NULL"
MARK="ferry-bench-sql v1 rows=$rows"
have="$(sql -e "SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA='${prefix}_src' AND TABLE_NAME='t'" 2>/dev/null || true)"
if [ "$regen" = 1 ] || [ "$have" != "$MARK" ]; then
  log "generating ${prefix}_src.t ($rows rows)"
  t0=$(now)
  sql <<SQL
CREATE DATABASE IF NOT EXISTS ${prefix}_src;
USE ${prefix}_src;
DROP TABLE IF EXISTS t;
CREATE TABLE t ($COLS) ENGINE=InnoDB;
INSERT INTO t SELECT seq, MD5(seq), CONCAT('user-', seq, '@example.com'),
  UNHEX(SUBSTRING(REPEAT(SHA2(seq, 256), 4), 1, 200)) FROM seq_1_to_$rows;
ALTER TABLE t COMMENT = '$MARK';
SQL
  log "generated in $(sub "$(now)" "$t0") s"
fi
got="$(sql -e "SELECT COUNT(*) FROM ${prefix}_src.t")"
[ "$got" = "$rows" ] || die "${prefix}_src.t has $got rows, expected $rows (try --regen)"
for d in ${prefix}_dst_ferry ${prefix}_dst_mydumper; do
  sql -e "CREATE DATABASE IF NOT EXISTS $d; DROP TABLE IF EXISTS $d.t; CREATE TABLE $d.t ($COLS) ENGINE=InnoDB"
done
# The pg case: the same table in PostgreSQL (BYTEA for VARBINARY), one database per tool.
PG_COLS="id BIGINT NOT NULL PRIMARY KEY, a VARCHAR(64) NOT NULL, b VARCHAR(64) NOT NULL, v BYTEA NOT NULL"
if case_on pg; then
  for d in ${prefix}_pg_ferry ${prefix}_pg_pgloader; do
    psql_do postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$d'" | grep -q 1 \
      || psql_do postgres -c "CREATE DATABASE $d"
    psql_do "$d" -c "DROP TABLE IF EXISTS t; CREATE TABLE t ($PG_COLS)"
  done
fi

# Between runs: empty both targets, let InnoDB write back every dirty page and checkpoint (the
# previous load's dirty pages and redo would otherwise slow the next run down), then read the
# source once so that each run starts with the source in the buffer pool. The flush settings are
# raised only for this and restored before the next run.
settle() {
  sql -e "TRUNCATE TABLE ${prefix}_dst_ferry.t; TRUNCATE TABLE ${prefix}_dst_mydumper.t"
  if case_on pg; then
    psql_do ${prefix}_pg_ferry -c "TRUNCATE t"
    psql_do ${prefix}_pg_pgloader -c "TRUNCATE t; CHECKPOINT"
  fi
  rm -rf "$dump_dir"
  local pct cap capmax i dirty age
  read -r pct cap capmax < <(sql -e 'SELECT @@innodb_max_dirty_pages_pct, @@innodb_io_capacity, @@innodb_io_capacity_max')
  sql -e "SET GLOBAL innodb_io_capacity_max = GREATEST(20000, @@innodb_io_capacity_max);
          SET GLOBAL innodb_io_capacity = GREATEST(10000, @@innodb_io_capacity);
          SET GLOBAL innodb_max_dirty_pages_pct = 0"
  for i in $(seq 1 240); do
    dirty="$(status_var Innodb_buffer_pool_pages_dirty)"
    age="$(status_var Innodb_checkpoint_age)"
    if [ "${dirty:-0}" -le 64 ] && [ "${age:-0}" -le 1048576 ]; then break; fi
    sleep 0.25
  done
  sql -e "SET GLOBAL innodb_max_dirty_pages_pct = $pct; SET GLOBAL innodb_io_capacity = $cap;
          SET GLOBAL innodb_io_capacity_max = $capmax"
  sql -e "SELECT COUNT(*), SUM(LENGTH(v)) FROM ${prefix}_src.t" >/dev/null
  sync
}

# check_target DB: the copy must have left exactly ROWS rows.
check_target() {
  local n; n="$(sql -e "SELECT COUNT(*) FROM $1.t")"
  if [ "$n" != "$rows" ]; then
    log "CHECK FAILED: $1.t has $n rows, expected $rows"
    echo "CHECK: $1.t has $n rows"
  fi
}

# record THREADS TOOL BATCH SECONDS CLIENT_CPU SERVER_CPU NOTE
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$RESULTS"; }

# run_ferry THREADS BATCH ROUND: one timed `ferry run` process (startup, plan, copy, verify).
run_ferry() {
  local n="$1" b="$2" r="$3" tag="ferry-t$1-b$2-r$3"
  local out="$LOGS/$tag.out" err="$LOGS/$tag.err" tf="$LOGS/$tag.time"
  rm -rf "$work/state"
  local t0 t1 s0 s1 rc=0
  s0=$(server_cpu); t0=$(now)
  /usr/bin/time -f '%U %S' -o "$tf" "$FERRY" run "$LUA" -q --state "$work/state" \
    -p src="$BASE_URL/${prefix}_src" -p dst="$BASE_URL/${prefix}_dst_ferry" -p table=t \
    -p workers="$n" -p batch="$b" -p verify=count >"$out" 2>"$err" || rc=$?
  t1=$(now); s1=$(server_cpu)
  local note="" json
  json="$(grep '^{' "$out" | tail -n 1 || true)"
  [ "$rc" = 0 ] || { note="CHECK: ferry exited $rc"; log "ferry failed: $(tail -n 5 "$err")"; }
  note="$note$(check_target ${prefix}_dst_ferry)"
  record "$n" "ferry" "$b" "$(sub "$t1" "$t0")" "$(awk '{printf "%.2f", $1 + $2}' "$tf")" \
    "$(sub "$s1" "$s0")" "$note"
  log "ferry threads=$n batch=$b round $r: $(sub "$t1" "$t0") s $json"
}

# run_ferry_pg THREADS BATCH ROUND: ferry copy_table from MariaDB into PostgreSQL.
run_ferry_pg() {
  local n="$1" b="$2" r="$3" tag="ferry-pg-t$1-b$2-r$3"
  local out="$LOGS/$tag.out" err="$LOGS/$tag.err" tf="$LOGS/$tag.time"
  rm -rf "$work/state"
  local t0 t1 s0 s1 rc=0 note="" json cnt
  s0=$(server_cpu); t0=$(now)
  /usr/bin/time -f '%U %S' -o "$tf" "$FERRY" run "$LUA" -q --state "$work/state" \
    -p src="$BASE_URL/${prefix}_src" -p dst="$PG_BASE/${prefix}_pg_ferry" -p table=t \
    -p workers="$n" -p batch="$b" -p verify=count >"$out" 2>"$err" || rc=$?
  t1=$(now); s1=$(server_cpu)
  json="$(grep '^{' "$out" | tail -n 1 || true)"
  [ "$rc" = 0 ] || { note="CHECK: ferry exited $rc"; log "ferry failed: $(tail -n 5 "$err")"; }
  cnt="$(psql_do ${prefix}_pg_ferry -tAc 'SELECT COUNT(*) FROM t')"
  [ "$cnt" = "$rows" ] || note="$note CHECK: pg target has $cnt rows"
  record "$n" "ferry-pg" "$b" "$(sub "$t1" "$t0")" "$(awk '{printf "%.2f", $1 + $2}' "$tf")" \
    "$(sub "$s1" "$s0")" "$note"
  log "ferry -> pg threads=$n batch=$b round $r: $(sub "$t1" "$t0") s $json"
}

# run_pgloader THREADS ROUND: pgloader from MariaDB into the pre-created PostgreSQL table, data
# only, N workers (pgloader's reader/writer threads) and N concurrent table-range readers.
run_pgloader() {
  local n="$1" r="$2" tag="pgloader-t$1-r$2"
  local tf="$LOGS/$tag.time" cmdf="$LOGS/$tag.load" t0 t1 s0 s1 rc=0 note="" cnt
  cat >"$cmdf" <<LOAD
LOAD DATABASE
  FROM $BASE_URL/${prefix}_src
  INTO $PG_BASE/${prefix}_pg_pgloader
  WITH data only, truncate, create no tables, create no indexes, no foreign keys,
       reset no sequences, workers = $n, concurrency = 1, multiple readers per thread,
       rows per range = $chunk
  INCLUDING ONLY TABLE NAMES MATCHING 't'
  ALTER SCHEMA '${prefix}_src' RENAME TO 'public';
LOAD
  s0=$(server_cpu); t0=$(now)
  /usr/bin/time -f '%U %S' -o "$tf" pgloader --no-ssl-cert-verification "$cmdf" \
    >"$LOGS/$tag.log" 2>&1 || rc=$?
  t1=$(now); s1=$(server_cpu)
  [ "$rc" = 0 ] || { note="CHECK: pgloader exited $rc"; log "pgloader failed: $(tail -n 5 "$LOGS/$tag.log")"; }
  cnt="$(psql_do ${prefix}_pg_pgloader -tAc 'SELECT COUNT(*) FROM t')"
  [ "$cnt" = "$rows" ] || note="$note CHECK: pg target has $cnt rows"
  record "$n" "pgloader" "" "$(sub "$t1" "$t0")" "$(awk '{printf "%.2f", $1 + $2}' "$tf")" \
    "$(sub "$s1" "$s0")" "$note"
  log "pgloader threads=$n round $r: $(sub "$t1" "$t0") s"
}

# run_mydumper THREADS ROUND: dump (timed), then load (timed) into ${prefix}_dst_mydumper.
run_mydumper() {
  local n="$1" r="$2" tag="mydumper-t$1-r$2"
  local tf1="$LOGS/$tag.dump.time" tf2="$LOGS/$tag.load.time"
  local t0 t1 t2 s0 s1 s2 rc1=0 rc2=0 note=""
  s0=$(server_cpu); t0=$(now)
  /usr/bin/time -f '%U %S' -o "$tf1" mydumper -h "$DB_HOST" -P "$DB_PORT" -u "$DB_USER" -p "$DB_PASS" \
    --threads "$n" --database ${prefix}_src --tables-list t --rows "$chunk" --no-schemas \
    --outputdir "$dump_dir" --verbose 2 >"$LOGS/$tag.dump.log" 2>&1 || rc1=$?
  t1=$(now); s1=$(server_cpu)
  /usr/bin/time -f '%U %S' -o "$tf2" myloader -h "$DB_HOST" -P "$DB_PORT" -u "$DB_USER" -p "$DB_PASS" \
    --threads "$n" --directory "$dump_dir" --database ${prefix}_dst_mydumper \
    --verbose 2 >"$LOGS/$tag.load.log" 2>&1 || rc2=$?
  t2=$(now); s2=$(server_cpu)
  [ "$rc1" = 0 ] || note="CHECK: mydumper exited $rc1 "
  [ "$rc2" = 0 ] || note="${note}CHECK: myloader exited $rc2 "
  note="$note$(check_target ${prefix}_dst_mydumper)"
  local c1 c2
  c1="$(awk '{printf "%.2f", $1 + $2}' "$tf1")"; c2="$(awk '{printf "%.2f", $1 + $2}' "$tf2")"
  record "$n" "mydumper" "" "$(sub "$t1" "$t0")" "$c1" "$(sub "$s1" "$s0")" "$note"
  record "$n" "myloader" "" "$(sub "$t2" "$t1")" "$c2" "$(sub "$s2" "$s1")" "$note"
  record "$n" "mydumper+myloader" "" "$(sub "$t2" "$t0")" "$(awk -v a="$c1" -v b="$c2" 'BEGIN{printf "%.2f", a + b}')" \
    "$(sub "$s2" "$s0")" "$note"
  log "mydumper|myloader threads=$n round $r: dump $(sub "$t1" "$t0") s, load $(sub "$t2" "$t1") s"
  rm -rf "$dump_dir"
}

# Runs --------------------------------------------------------------------------------------
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
started="$(date -u '+%Y-%m-%d %H:%M UTC')"
for r in $(seq 1 "$repeat"); do
  for n in "${THREADS[@]}"; do
    if case_on pg; then
      if [ $((r % 2)) = 1 ]; then
        for b in "${BATCHES[@]}"; do settle; run_ferry_pg "$n" "$b" "$r"; done
        settle; run_pgloader "$n" "$r"
      else
        settle; run_pgloader "$n" "$r"
        for b in "${BATCHES[@]}"; do settle; run_ferry_pg "$n" "$b" "$r"; done
      fi
    fi
    case_on mysql || continue
    # Alternate which tool goes first from one round to the next.
    if [ $((r % 2)) = 1 ]; then
      for b in "${BATCHES[@]}"; do settle; run_ferry "$n" "$b" "$r"; done
      settle; run_mydumper "$n" "$r"
    else
      settle; run_mydumper "$n" "$r"
      for b in "${BATCHES[@]}"; do settle; run_ferry "$n" "$b" "$r"; done
    fi
  done
done
settle
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"

# Table -------------------------------------------------------------------------------------
# Per (threads, tool, batch): the best (shortest) and the median time over the rounds; rows/s and
# the ratios come from the best time (other jobs on the machine only ever slow a run down), the
# CPU columns are medians. Per thread count the ferry row with the best batch is marked, and the
# load-only and total rows get the ratio (best ferry rows/s) / (their rows/s).
{
echo "SQL copy of $rows rows (id BIGINT PK, a VARCHAR(64), b VARCHAR(64), v VARBINARY(100)),"
echo "MariaDB $(sql -e 'SELECT VERSION()') on $DB_HOST:$DB_PORT, $(nproc) cores, $started;"
echo "$(mydumper --version | head -n 1); ferry $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo '?') ($FERRY);"
echo "$repeat round(s); load average before $load_start, after $load_end"
echo
awk -F'\t' -v rows="$rows" '
function sorted(s, a,   n, i, j, t) {
  n = split(s, a, " ")
  for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
  return n
}
function median(s,   a, n) { n = sorted(s, a); return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
function minimum(s,   a) { sorted(s, a); return a[1] }
{
  k = $1 SUBSEP $2 SUBSEP $3
  if (!(k in S)) { order[++nk] = k; S[k] = "" }
  S[k] = S[k] " " $4; C[k] = C[k] " " $5; V[k] = V[k] " " ($6 == "" ? "-1" : $6)
  if ($7 != "") note[k] = note[k] " " $7
}
END {
  for (i = 1; i <= nk; i++) {
    k = order[i]; split(k, f, SUBSEP)
    sec[k] = minimum(S[k]); med[k] = median(S[k]); cpu[k] = median(C[k]); srv[k] = median(V[k])
    rps[k] = rows / sec[k]
    if (f[2] == "ferry" && (!(f[1] in best) || rps[k] > rps[best[f[1]]])) best[f[1]] = k
    if (f[2] == "ferry-pg" && (!(f[1] in bestpg) || rps[k] > rps[bestpg[f[1]]])) bestpg[f[1]] = k
  }
  printf "| threads | case | best s | median s | rows/s (best) | client CPU s | mariadbd CPU s | ferry best / this |\n"
  printf "|--:|---|--:|--:|--:|--:|--:|--:|\n"
  for (i = 1; i <= nk; i++) {
    k = order[i]; split(k, f, SUBSEP); n = f[1]
    ratio = ""
    if (f[2] == "ferry") {
      name = "ferry copy_table, batch " f[3] (best[n] == k ? " (best)" : "")
    } else if (f[2] == "ferry-pg") {
      name = "ferry copy_table MySQL -> PostgreSQL, batch " f[3] (bestpg[n] == k ? " (best)" : "")
    } else if (f[2] == "pgloader") {
      name = "pgloader MySQL -> PostgreSQL"
      if (n in bestpg) ratio = sprintf("%.2fx", rps[bestpg[n]] / rps[k])
    } else {
      name = (f[2] == "mydumper" ? "mydumper (dump only)" : f[2] == "myloader" ? "myloader (load only)" : "mydumper + myloader (total)")
      if (f[2] != "mydumper" && (n in best)) ratio = sprintf("%.2fx", rps[best[n]] / rps[k])
    }
    printf "| %s | %s | %.2f | %.2f | %.0f | %.2f | %s | %s |%s\n", n, name, sec[k], med[k], rps[k], cpu[k],
      (srv[k] < 0 ? "-" : sprintf("%.2f", srv[k])), ratio, (k in note ? " " note[k] : "")
  }
  printf "\nTargets:"
  for (i = 1; i <= nk; i++) {
    k = order[i]; split(k, f, SUBSEP); n = f[1]
    if (f[2] == "pgloader" && (n in bestpg)) {
      b = bestpg[n]; split(b, g, SUBSEP)
      printf " threads %s: ferry -> PostgreSQL %.0f rows/s (batch %s), %.2fx pgloader.", n, rps[b], g[3], rps[b] / rps[k]
    }
    if (f[2] != "mydumper+myloader" || !(n in best)) continue
    b = best[n]; split(b, g, SUBSEP)
    printf " threads %s: ferry %.0f rows/s (batch %s) %s 100,000 rows/s, %.2fx mydumper+myloader (>= 1x: %s; issue 20, >= 1.6x at 4 threads: %s).", n, rps[b], g[3],
      (rps[b] >= 100000 ? "meets" : "MISSES"), rps[b] / rps[k], (rps[b] >= rps[k] ? "met" : "MISSED"),
      (n != 4 ? "not a target" : (rps[b] >= 1.6 * rps[k] ? "met" : "MISSED"))
  }
  printf "\n"
}' "$RESULTS"
} | tee "$work/table.md"
echo
echo "raw results (threads, tool, batch, seconds, client CPU s, mariadbd CPU s, note; one line per run) in $RESULTS; logs in $LOGS"
