#!/usr/bin/env bash
# Scale-out benchmark: 1, 2, 4 and 8 local ferry shard processes (`--phase shards --shard I/N`)
# copy one data set between two buckets of one s3s-fs server on loopback. Reports objects/s per
# process and in total, so the scaling curve, and where the single server (not ferry) becomes the
# limit, is on record. Prints one markdown table at the end. See bench/scale-out/README.md.
#
#   bench/scale-out/run.sh                 # 20,000 x 4 KiB objects
#   bench/scale-out/run.sh --quick         # 4,000 x 4 KiB objects
#   bench/scale-out/run.sh --repeat 3      # each measurement 3 times; the table gives medians
#
# Other options: --shards "1 2 4 8", --objects N, --size BYTES (4096), --concurrency C (16 per
# process), --work DIR (/tmp/ferry-bench-scale-out), --server-root DIR (s3s-fs root; default
# /dev/shm/ferry-bench-scale-root, a tmpfs), --port P (18024), --no-setup (skip the s3s-fs install
# and the ferry build), --table RESULTS.tsv (print the table of an earlier run).
#
# Works as bench/copy/run.sh does: builds ferry into target-bench/ (never target/) and s3s-fs
# 0.14.1 into bench/.tools (cargo must already be there).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "$0")/.." && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
TOOLS="$BENCH_DIR/.tools"
TARGET="$REPO/target-bench"
LUA="$BENCH_DIR/scale-out/shard.lua"

objects=20000
size=4096
conc=16
shard_counts="1 2 4 8"
repeat=1
work="/tmp/ferry-bench-scale-out"
server_root=""
port=18024
setup=1
table_from=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) objects=4000 ;;
    --objects) objects="$2"; shift ;;
    --size) size="$2"; shift ;;
    --concurrency) conc="$2"; shift ;;
    --shards) shard_counts="$2"; shift ;;
    --repeat) repeat="$2"; shift ;;
    --work) work="$2"; shift ;;
    --server-root) server_root="$2"; shift ;;
    --port) port="$2"; shift ;;
    --no-setup) setup=0 ;;
    --table) table_from="$2"; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { echo "[bench/scale-out] $*" >&2; }
# shellcheck source=../lib.sh
source "$REPO/bench/lib.sh"

# Table: medians over the rounds per shard count. RESULTS rows:
# shards round objects copied_total wall_seconds per_process_rates(space separated) note
print_table() {
awk -F'\t' '
function median(s,   a, n, i, j, t) {
  n = split(s, a, " ")
  for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
  return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
  k = $1
  if (!(k in objs)) { order[++nk] = k; objs[k] = $3 }
  wall[k] = wall[k] " " $5
  n = split($6, r, " "); lo = ""; hi = ""; sum = 0
  for (i = 1; i <= n; i++) { sum += r[i]; if (lo == "" || r[i] + 0 < lo) lo = r[i] + 0; if (hi == "" || r[i] + 0 > hi) hi = r[i] + 0 }
  mean[k] = mean[k] " " (sum / n); mins[k] = mins[k] " " lo; maxs[k] = maxs[k] " " hi
  if ($7 != "") note[k] = $7
}
END {
  printf "| shard processes | objects | seconds | total objects/s | per process objects/s (mean) | per process min-max | speed-up vs 1 | note |\n"
  printf "|--:|--:|--:|--:|--:|--:|--:|---|\n"
  for (i = 1; i <= nk; i++) {
    k = order[i]; w = median(wall[k]); t = objs[k] / w
    if (i == 1) base = t
    printf "| %s | %d | %.2f | %.0f | %.0f | %.0f-%.0f | %.2fx | %s |\n", k, objs[k], w, t,
      median(mean[k]), median(mins[k]), median(maxs[k]), t / base, (k in note ? note[k] : "")
  }
}' "$1"
}

if [ -n "$table_from" ]; then print_table "$table_from"; exit 0; fi

if [ "$setup" = 1 ]; then
  command -v cc >/dev/null || bench_apt_install build-essential
  bench_ensure_cargo
  if [ ! -x "$TOOLS/bin/s3s-fs" ]; then
    log "installing s3s-fs 0.14.1 into bench/.tools"
    CARGO_TARGET_DIR="$TARGET/s3s-fs" cargo install s3s-fs --version 0.14.1 --features binary \
      --locked --root "$TOOLS" >&2
  fi
  bench_build_ferry
fi
FERRY="$TARGET/release/ferry"
S3S="$TOOLS/bin/s3s-fs"
for b in "$FERRY" "$S3S"; do
  [ -x "$b" ] || { echo "missing $b (run without --no-setup)" >&2; exit 1; }
done

mkdir -p "$work"
work="$(cd "$work" && pwd)"
if [ -z "$server_root" ]; then
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then server_root=/dev/shm/ferry-bench-scale-root; else server_root="$work/s3root"; fi
fi
ROOT="$server_root"
LOGS="$work/logs"
RESULTS="$work/results.tsv"
KEY="benchkey"
SECRET="benchsecret-0123456789"
ENDPOINT="http://127.0.0.1:$port"
mkdir -p "$LOGS"
: > "$RESULTS"

trap stop_server EXIT # start_server / stop_server: bench/lib.sh
# The same source data set every round (files in the server's root are served as objects), an
# empty destination bucket.
reset_buckets() {
  stop_server
  rm -rf "$ROOT"
  mkdir -p "$ROOT/src" "$ROOT/dst"
  local per=1000 d left=$objects
  for d in $(seq -f '%03g' 0 $(( (objects + per - 1) / per - 1 ))); do
    local n=$(( left < per ? left : per ))
    mkdir -p "$ROOT/src/d$d"
    head -c $((n * size)) /dev/urandom | split -b "$size" -d -a 6 - "$ROOT/src/d$d/obj-"
    left=$((left - n))
  done
  sync
  start_server
}

now() { date +%s.%N; }

# run_shards N ROUND [CONCURRENCY LABEL]: N ferry processes at once, each timed; one RESULTS row.
run_shards() {
  local n="$1" round="$2" c="${3:-$conc}" label="${4:-$1}" i pids=() state="$work/state-$1-$2"
  rm -rf "$state"
  reset_buckets
  log "$n shard process(es), round $round"
  for i in $(seq 0 $((n - 1))); do
    (
      t0=$(now)
      env -u AWS_CA_BUNDLE "$FERRY" run "$LUA" -q --phase shards --shard "$i/$n" --state "$state" \
        -p src=s3://src -p dst=s3://dst -p endpoint="$ENDPOINT" -p access_key="$KEY" \
        -p secret_key="$SECRET" -p concurrency="$c" \
        >"$LOGS/$n-$i.out" 2>"$LOGS/$n-$i.err" || echo "failed" >"$LOGS/$n-$i.failed"
      t1=$(now)
      echo "$t0 $t1" >"$LOGS/$n-$i.time"
    ) &
    pids+=($!)
  done
  rm -f "$LOGS/$n-"*.failed
  wait "${pids[@]}"
  local first="" last="" total=0 rates="" note=""
  for i in $(seq 0 $((n - 1))); do
    local t0 t1 json copied
    read -r t0 t1 <"$LOGS/$n-$i.time"
    json=$(grep '^{' "$LOGS/$n-$i.out" | tail -n 1 || true)
    copied=$(sed -n 's/.*"copied":\([0-9]*\).*/\1/p' <<<"$json")
    if [ -e "$LOGS/$n-$i.failed" ] || [ -z "$copied" ]; then
      note="CHECK: shard $i failed (see $LOGS/$n-$i.err)"
      copied=0
    fi
    total=$((total + copied))
    rates="$rates $(awk "BEGIN{printf \"%.1f\", $copied / ($t1 - $t0)}")"
    if [ -z "$first" ] || awk "BEGIN{exit !($t0 < $first)}"; then first=$t0; fi
    if [ -z "$last" ] || awk "BEGIN{exit !($t1 > $last)}"; then last=$t1; fi
  done
  local stored
  stored=$(find "$ROOT/dst" -type f | wc -l)
  if [ "$total" != "$objects" ] || [ "$stored" != "$objects" ]; then
    note="${note:+$note; }CHECK: copied $total, stored $stored, expected $objects"
  fi
  local wall
  wall=$(awk "BEGIN{print $last - $first}")
 printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$round" "$objects" "$total" "$wall" "${rates# }" "$note" >>"$RESULTS"
  log "$label: $total objects in $(awk "BEGIN{printf \"%.2f\", $wall}") s; per process:$rates objects/s${note:+ ($note)}"
}

# The reference: one process with the concurrency of the largest run, so the table separates what
# more processes bring from what more concurrent requests bring.
max_n=$(tr ' ' '\n' <<<"$shard_counts" | sort -n | tail -n 1)
for round in $(seq 1 "$repeat"); do
  for n in $shard_counts; do
    run_shards "$n" "$round"
  done
  if [ "$max_n" -gt 1 ]; then
    run_shards 1 "$round" $((conc * max_n)) "1 (concurrency $((conc * max_n)))"
  fi
done
stop_server
rm -rf "$ROOT"

echo
echo "Scale-out: $objects x $size B objects, one s3s-fs server, $conc concurrent copies per process, $(nproc) CPU(s)"
echo
print_table "$RESULTS"
