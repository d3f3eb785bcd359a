#!/usr/bin/env bash
# Seafile migration benchmark: `ferry run seafile-migrate` (fs backend -> S3, three buckets)
# against `rclone copy` of the same three folders into the same three buckets, on the same
# s3s-fs server on loopback, with the same concurrency. Prints one table (markdown) at the end.
# See bench/seafile/README.md.
#
#   bench/seafile/run.sh                 # 20 libraries = 20,000 objects, 3 rounds (medians)
#   bench/seafile/run.sh --quick         # 2 libraries = 2,000 objects, 1 round
#
# Other options: --libraries N (20; each has 50 commits, 300 fs objects, 650 blocks),
# --repeat R (3), --concurrency N (32: ferry's per-type concurrency; each rclone gets
# --transfers N --checkers N), --no-sequential (skip the row with one rclone per type in turn),
# --work DIR (/tmp/ferry-bench-seafile: data, logs, results), --server-root DIR (s3s-fs root;
# default /dev/shm/ferry-bench-seafile-s3root), --port P (18015), --no-setup (skip installs and
# the ferry build), --table RESULTS.tsv (print the table of an earlier run again).
#
# Works on a fresh Debian machine as root: installs rclone, GNU time, python3 and a Rust
# toolchain when missing, builds ferry into target-bench/ (never target/) and s3s-fs 0.14.1
# into bench/.tools.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "$0")/.." && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
TOOLS="$BENCH_DIR/.tools"
TARGET="$REPO/target-bench"
GEN="$BENCH_DIR/seafile/gen.py"

quick=0
libs=""
repeat=""
conc=32
sequential=1
work="/tmp/ferry-bench-seafile"
server_root=""
port=18015
setup=1
table_from=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --libraries) libs="$2"; shift ;;
    --repeat) repeat="$2"; shift ;;
    --concurrency) conc="$2"; shift ;;
    --no-sequential) sequential=0 ;;
    --work) work="$2"; shift ;;
    --server-root) server_root="$2"; shift ;;
    --port) port="$2"; shift ;;
    --no-setup) setup=0 ;;
    --table) table_from="$2"; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$quick" = 1 ]; then libs="${libs:-2}"; repeat="${repeat:-1}"; fi
libs="${libs:-20}"; repeat="${repeat:-3}"

log() { echo "[bench/seafile] $*" >&2; }
# shellcheck source=../lib.sh
source "$REPO/bench/lib.sh"

# Table -------------------------------------------------------------------------------------
# results.tsv: tool, objects, bytes, seconds, peak RSS KB, note. Medians per tool; the ratio
# (ferry's objects/s over that row's) is on the rclone rows.
print_table() {
awk -F'\t' '
function median(s,   a, n, i, j, t) {
  n = split(s, a, " ")
  for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
  return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
  k = $1
  if (!(k in objs)) { order[++nk] = k; objs[k] = $2; bytes[k] = $3 }
  secs[k] = secs[k] " " $4; rss[k] = rss[k] " " $5; runs[k]++
  if ($6 != "") note[k] = note[k] " " $6
}
END {
  for (i = 1; i <= nk; i++) { k = order[i]; S[k] = median(secs[k]); OPS[k] = objs[k] / S[k] }
  printf "| tool | objects | MB | seconds | objects/s | MB/s | peak RSS MB | ferry/rclone |\n"
  printf "|---|--:|--:|--:|--:|--:|--:|--:|\n"
  for (i = 1; i <= nk; i++) {
    k = order[i]; ratio = ""
    for (j = 1; j <= nk; j++) if (order[j] ~ /^ferry/) f = order[j]
    if (k ~ /^rclone/ && (f in S)) {
      r = OPS[f] / OPS[k]; ratio = sprintf("%.2fx", r) (r >= 1.5 ? " (target 1.5x met)" : " (target 1.5x MISSED)")
    }
    printf "| %s | %d | %.1f | %.2f | %.0f | %.1f | %.0f | %s |%s\n", k, objs[k], bytes[k] / 1e6,
      S[k], OPS[k], bytes[k] / 1e6 / S[k], median(rss[k]) * 1024 / 1e6, ratio, (k in note ? note[k] : "")
  }
}' "$1"
}

if [ -n "$table_from" ]; then print_table "$table_from"; exit 0; fi

# Setup -------------------------------------------------------------------------------------

if [ "$setup" = 1 ]; then
  missing=()
  command -v rclone >/dev/null || missing+=(rclone)
  [ -x /usr/bin/time ] || missing+=(time)
  command -v python3 >/dev/null || missing+=(python3)
  command -v cc >/dev/null || missing+=(build-essential)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    bench_apt_install "${missing[@]}"
  fi
  bench_ensure_cargo
  if [ ! -x "$TOOLS/bin/s3s-fs" ]; then
    # 0.14.1: the newest s3s-fs that builds with rustc 1.95 (0.17 needs 1.96).
    log "installing s3s-fs 0.14.1 into bench/.tools"
    CARGO_TARGET_DIR="$TARGET/s3s-fs" cargo install s3s-fs --version 0.14.1 --features binary \
      --locked --root "$TOOLS" >&2
  fi
  bench_build_ferry
fi
FERRY="$TARGET/release/ferry"
S3S="$TOOLS/bin/s3s-fs"
for b in "$FERRY" "$S3S" rclone python3 /usr/bin/time; do
  command -v "$b" >/dev/null || { echo "missing $b (run without --no-setup)" >&2; exit 1; }
done

mkdir -p "$work"
work="$(cd "$work" && pwd)"
if [ -z "$server_root" ]; then
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then server_root=/dev/shm/ferry-bench-seafile-s3root; else server_root="$work/s3root"; fi
fi
ROOT="$server_root"
SITE="$work/site"             # conf/, seafile-data/, new-conf/
STORAGE="$SITE/seafile-data/storage"
LOGS="$work/logs"
RESULTS="$work/results.tsv"
KEY="benchkey"
SECRET="benchsecret-0123456789"
TYPES=(commits fs blocks)
mkdir -p "$LOGS"
: > "$RESULTS"

# Data --------------------------------------------------------------------------------------
spec="libraries=$libs $(sha1sum < "$GEN" | cut -c1-12)"
if [ ! -f "$SITE/spec" ] || [ "$(cat "$SITE/spec")" != "$spec" ]; then
  log "generating a Seafile storage of $libs libraries in $STORAGE"
  rm -rf "$SITE"
  mkdir -p "$SITE"
  python3 "$GEN" "$SITE" "$libs" > "$SITE/count"
  echo "$spec" > "$SITE/spec"
fi
read -r N BYTES < "$SITE/count"
declare -A TN
for t in "${TYPES[@]}"; do TN[$t]=$(find "$STORAGE/$t" -type f | wc -l); done
log "source: $N objects, $BYTES bytes (commits ${TN[commits]}, fs ${TN[fs]}, blocks ${TN[blocks]})"
# The current conf (fs backend: the default, seafile_data/storage, as `ferry demo` writes it;
# the other sections only have to survive) and the temporary conf describing the new backend.
mkdir -p "$SITE/conf" "$SITE/new-conf"
printf '[fileserver]\nport = 8082\n\n[quota]\ndefault = 2\n' > "$SITE/conf/seafile.conf"
: > "$SITE/new-conf/seafile.conf"
for s in commit_object_backend:commits fs_object_backend:fs block_backend:blocks; do
  cat >> "$SITE/new-conf/seafile.conf" <<EOF
[${s%%:*}]
name = s3
bucket = seafile-${s##*:}
key_id = $KEY
key = $SECRET
host = 127.0.0.1:$port
path_style_request = true
use_v4_signature = true
aws_region = us-east-1

EOF
done
# Source bytes in the page cache for both tools alike.
find "$STORAGE" -type f -print0 | xargs -0 cat > /dev/null

# Server ------------------------------------------------------------------------------------
trap stop_server EXIT # start_server / stop_server: bench/lib.sh
# Empty buckets: stop the server, wipe its root (objects and .bucket-* metadata), restart.
fresh_server() {
  stop_server
  rm -rf "$ROOT"
  for t in "${TYPES[@]}"; do mkdir -p "$ROOT/seafile-$t"; done
  sync
  start_server
}

# check TOOL DEPTH: every bucket holds as many objects and bytes as its source folder, at the
# expected key depth under the bucket folder (ferry: repo/abcdef... = 2; rclone: repo/ab/cdef... = 3).
# Prints nothing when all is well, else a note for the table.
check() {
  local tool="$1" depth="$2" t n b note=""
  for t in "${TYPES[@]}"; do
    n=$(find "$ROOT/seafile-$t" -mindepth "$depth" -maxdepth "$depth" -type f | wc -l)
    b=$(find "$ROOT/seafile-$t" -type f -printf '%s\n' | awk '{s+=$1} END{print s+0}')
    local want_b; want_b=$(find "$STORAGE/$t" -type f -printf '%s\n' | awk '{s+=$1} END{print s+0}')
    log "$tool: bucket seafile-$t holds $n objects at depth $depth ($b bytes); source ${TN[$t]} ($want_b bytes)"
    if [ "$n" != "${TN[$t]}" ] || [ "$b" != "$want_b" ]; then note="$note CHECK: seafile-$t has $n/${TN[$t]} objects, $b/$want_b bytes."; fi
  done
  echo "$note"
}

now() { date +%s.%N; }
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$RESULTS"; }

RCLONE_CONF="$work/rclone.conf"
cat > "$RCLONE_CONF" <<EOF
[bench]
type = s3
provider = Other
endpoint = http://127.0.0.1:$port
access_key_id = $KEY
secret_access_key = $SECRET
region = us-east-1
force_path_style = true
EOF

FERRY_ROW="ferry seafile-migrate (concurrency $conc per type)"
RCLONE_ROW="rclone copy x3 at once (--transfers $conc --checkers $conc each)"
SEQ_ROW="rclone copy x3 one after another (--transfers $conc --checkers $conc)"

run_ferry() {
  fresh_server
  local err="$LOGS/ferry.err" tf="$LOGS/ferry.time" rc=0 t0 t1 note
  rm -rf "$work/ferry-state"
  sync
  t0=$(now)
  env -u AWS_CA_BUNDLE /usr/bin/time -f %M -o "$tf" "$FERRY" run seafile-migrate --yes -q \
    --state "$work/ferry-state" \
    -p conf_dir="$SITE/conf" -p seafile_data="$SITE/seafile-data" -p dest_conf_dir="$SITE/new-conf" \
    -p phase=initial -p concurrency="$conc" >"$LOGS/ferry.out" 2>"$err" || rc=$?
  t1=$(now)
  note=$(check ferry 2)
  if [ "$rc" != 0 ]; then note="$note CHECK: ferry exited $rc."; log "ferry: $(tail -n 5 "$err")"; fi
  record "$FERRY_ROW" "$N" "$BYTES" "$(awk "BEGIN{print $t1-$t0}")" "$(tail -n 1 "$tf")" "$note"
  log "ferry: $(awk "BEGIN{printf \"%.2f\", $t1-$t0}") s, rc=$rc"
}

# rclone_one TYPE: one rclone process copying a type's folder into its bucket, as it is.
rclone_one() {
  local t="$1"
  env -u AWS_CA_BUNDLE /usr/bin/time -f %M -o "$LOGS/rclone-$t.time" rclone --config "$RCLONE_CONF" \
    copy "$STORAGE/$t" "bench:seafile-$t" --transfers "$conc" --checkers "$conc" \
    --low-level-retries 1 --stats 1h --stats-log-level NOTICE 2>"$LOGS/rclone-$t.err"
}

# run_rclone MODE (parallel|sequential). Peak RSS: the sum of the three processes' peaks when
# they run at once, the largest when they run one after another.
run_rclone() {
  local mode="$1" row t0 t1 rc=0 t note rss
  fresh_server
  sync
  t0=$(now)
  if [ "$mode" = parallel ]; then
    row="$RCLONE_ROW"
    local pids=()
    for t in "${TYPES[@]}"; do rclone_one "$t" & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p" || rc=$?; done
  else
    row="$SEQ_ROW"
    for t in "${TYPES[@]}"; do rclone_one "$t" || rc=$?; done
  fi
  t1=$(now)
  note=$(check "rclone ($mode)" 3)
  for t in "${TYPES[@]}"; do
    if grep -q '^Errors:' "$LOGS/rclone-$t.err"; then note="$note CHECK: rclone $t reported errors."; fi
  done
  if [ "$rc" != 0 ]; then note="$note CHECK: rclone exited $rc."; fi
  if [ "$mode" = parallel ]; then
    rss=$(cat "$LOGS"/rclone-*.time | awk '/^[0-9]+$/ {s+=$1} END{print s}')
  else
    rss=$(cat "$LOGS"/rclone-*.time | awk '/^[0-9]+$/ && $1>m {m=$1} END{print m}')
  fi
  record "$row" "$N" "$BYTES" "$(awk "BEGIN{print $t1-$t0}")" "$rss" "$note"
  log "rclone ($mode): $(awk "BEGIN{printf \"%.2f\", $t1-$t0}") s, rc=$rc"
}

for i in $(seq 1 "$repeat"); do
  log "round $i of $repeat"
  # Alternate which tool goes first from one round to the next.
  if [ $((i % 2)) = 1 ]; then
    run_ferry; run_rclone parallel; [ "$sequential" = 0 ] || run_rclone sequential
  else
    run_rclone parallel; [ "$sequential" = 0 ] || run_rclone sequential; run_ferry
  fi
done
stop_server
rm -rf "$ROOT"

print_table "$RESULTS" | tee "$work/table.md"
echo
echo "$libs libraries: ${TN[commits]} commits, ${TN[fs]} fs objects, ${TN[blocks]} blocks; concurrency $conc;" \
  "rounds $repeat (medians); raw results in $RESULTS; logs in $LOGS"
