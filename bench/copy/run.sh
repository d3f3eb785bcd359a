#!/usr/bin/env bash
# Copy benchmark: ferry against rclone, same generated data, same s3s-fs server on loopback,
# same concurrency. Prints one table (markdown) at the end. See bench/README.md.
#
#   bench/copy/run.sh                  # full run
#   bench/copy/run.sh --quick          # small sizes: a smoke run of every case
#   bench/copy/run.sh --repeat 3       # each measurement 3 times; the table gives medians
#   bench/copy/run.sh --cases 1,2,5    # only some cases (1 and 2 always run together)
#
# Other options: --concurrency N (64), --work DIR (/tmp/ferry-bench-copy: data, logs, results),
# --server-root DIR (s3s-fs root; default /dev/shm/ferry-bench-s3root, a tmpfs, else WORK/s3root),
# --layout dirs|flat (dirs: small objects in folders of 1,000; flat: all in one folder),
# --port P (18014), --no-setup (skip apt/cargo installs and the ferry build),
# --table RESULTS.tsv (only print the table of an earlier run's WORK/results.tsv).
#
# Works on a fresh Debian machine as root: installs rclone, GNU time when
# missing (cargo must already be there), builds ferry into target-bench/ (never target/) and s3s-fs 0.14.1 into bench/.tools.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "$0")/.." && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
TOOLS="$BENCH_DIR/.tools"
TARGET="$REPO/target-bench"
LUA="$BENCH_DIR/copy/copy.lua"

quick=0
repeat=1
cases="1,2,3,4,5"
conc=64
work="/tmp/ferry-bench-copy"
server_root=""
layout=dirs
port=18014
setup=1
table_from=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --repeat) repeat="$2"; shift ;;
    --cases) cases="$2"; shift ;;
    --concurrency) conc="$2"; shift ;;
    --work) work="$2"; shift ;;
    --server-root) server_root="$2"; shift ;;
    --layout) layout="$2"; shift
      case "$layout" in dirs|flat) ;; *) echo "--layout is dirs or flat" >&2; exit 2 ;; esac ;;
    --port) port="$2"; shift ;;
    --no-setup) setup=0 ;;
    --table) table_from="$2"; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
has_case() { case ",$cases," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
if has_case 2 && ! has_case 1; then cases="$cases,1"; fi
if has_case 1 && ! has_case 2; then cases="$cases,2"; fi

log() { echo "[bench/copy] $*" >&2; }
# shellcheck source=../lib.sh
source "$REPO/bench/lib.sh"

# Table -------------------------------------------------------------------------------------
# print_table RESULTS_TSV: medians over the rounds per (case, tool); the ratio (ferry / that
# rclone row) is on the rclone rows.
print_table() {
awk -F'\t' '
function median(s,   a, n, i, j, t) {
  n = split(s, a, " ")
  for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
  return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
  k = $1 SUBSEP $2
  if (!(k in objs)) { order[++nk] = k; objs[k] = $3; bytes[k] = $4 }
  secs[k] = secs[k] " " $5; rss[k] = rss[k] " " $6
  if ($7 != "") note[k] = $7
}
END {
  for (i = 1; i <= nk; i++) {
    k = order[i]; split(k, ct, SUBSEP)
    s = median(secs[k]); S[k] = s
    OPS[k] = objs[k] / s; MBS[k] = bytes[k] / 1e6 / s; RSS[k] = median(rss[k]) * 1024 / 1e6
  }
  printf "| case | tool | objects | MB | seconds | objects/s | MB/s | peak RSS MB | ferry/rclone | target |\n"
  printf "|---|---|--:|--:|--:|--:|--:|--:|--:|---|\n"
  for (cn = 1; cn <= 5; cn++) for (i = 1; i <= nk; i++) {
    k = order[i]; split(k, ct, SUBSEP); c = ct[1]; t = ct[2]
    if (substr(c, 1, 2) != cn " ") continue
    f = c SUBSEP "ferry"
    ratio = ""; target = ""
    if (t ~ /^rclone/ && (f in S)) {
      if (c ~ /^1 /) { r = OPS[f] / OPS[k]; ratio = sprintf("%.2fx objects/s", r); target = (r >= 1.5 ? "met" : "MISSED") " (>= 1.5x)" }
      if (c ~ /^2 / && t == "rclone") { r = OPS[f] / OPS[k]; ratio = sprintf("%.2fx objects/s", r); target = (r >= 3 ? "met" : "MISSED") " (>= 3x)" }
      if (c ~ /^2 / && t != "rclone") { r = OPS[f] / OPS[k]; ratio = sprintf("%.2fx objects/s", r); target = (r >= 1 ? "met" : "MISSED") " (>= 1x)" }
      if (c ~ /^3 /) { r = MBS[f] / MBS[k]; ratio = sprintf("%.2fx MB/s", r); target = (r >= 1 ? "met" : "MISSED") " (>= 1x)" }
      if (c ~ /^4 /) { ratio = sprintf("%.2fx RSS, %.2fx objects/s", RSS[f] / RSS[k], OPS[f] / OPS[k]) }
    }
    if (c ~ /^4 / && t == "ferry") target = (RSS[k] < 200 ? "met" : "MISSED") " (RSS < 200 MB)"
    if (t == "ferry (map)") {
      # Median of the per-round differences (each round runs both in one process).
      p = c SUBSEP "ferry (no map)"; n = split(secs[k], am, " "); split(secs[p], ap, " "); d = ""
      for (j = 1; j <= n; j++) d = d " " (am[j] - ap[j])
      added = median(d)
      ratio = sprintf("+%.3f s added", added); target = (added < 1 ? "met" : "MISSED") " (< 1 s added)"
    }
    mb = bytes[k] / 1e6
    printf "| %s | %s | %d | %s | %.2f | %s | %s | %.0f | %s | %s |\n", c, t, objs[k],
      (mb > 0 ? sprintf("%.1f", mb) : "-"), S[k], sprintf(OPS[k] < 10 ? "%.2f" : "%.0f", OPS[k]), (mb > 0 ? sprintf("%.1f", MBS[k]) : "-"), RSS[k], ratio,
      target (k in note ? " " note[k] : "")
  }
}' "$1"
}

if [ -n "$table_from" ]; then print_table "$table_from"; exit 0; fi

# Sizes -------------------------------------------------------------------------------------
if [ "$quick" = 1 ]; then
  small_dirs=1;  small_per=1000; small_size=4096          # case 1/2: 1,000 x 4 KiB
  large_n=4;     large_size=$((64 << 20))                 # case 3: 4 x 64 MiB
  many_dirs=10;  many_per=1000;  many_size=1024           # case 4: 10,000 x 1 KiB
  map_keys=100000                                         # case 5
else
  small_dirs=10; small_per=1000; small_size=4096          # 10,000 x 4 KiB
  large_n=16;    large_size=$((256 << 20))                # 16 x 256 MiB
  many_dirs=100; many_per=1000;  many_size=1024           # 100,000 x 1 KiB
  map_keys=1000000
fi
if [ "$layout" = flat ]; then
  small_per=$((small_dirs * small_per)); small_dirs=1
  many_per=$((many_dirs * many_per)); many_dirs=1
fi

# Setup -------------------------------------------------------------------------------------

if [ "$setup" = 1 ]; then
  missing=()
  command -v rclone >/dev/null || missing+=(rclone)
  [ -x /usr/bin/time ] || missing+=(time)
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
for b in "$FERRY" "$S3S" rclone /usr/bin/time; do
  command -v "$b" >/dev/null || { echo "missing $b (run without --no-setup)" >&2; exit 1; }
done

mkdir -p "$work"
work="$(cd "$work" && pwd)"
DATA="$work/data"
# The server keeps each object as a file plus two JSON files in one flat folder; on ext4 that
# folder's lock and inode allocation dominate small-object runs (see README), so use a tmpfs.
if [ -z "$server_root" ]; then
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then server_root=/dev/shm/ferry-bench-s3root; else server_root="$work/s3root"; fi
fi
ROOT="$server_root"
LOGS="$work/logs"
RESULTS="$work/results.tsv"
BUCKET="bench-copy"
KEY="benchkey"
SECRET="benchsecret-0123456789"
ENDPOINT="http://127.0.0.1:$port"
mkdir -p "$DATA" "$LOGS"
: > "$RESULTS"

# Data --------------------------------------------------------------------------------------
# DATA/NAME/tree gets DIRS folders of PER files of SIZE random bytes (split: one process per
# folder). DATA/NAME/spec, beside the tree, lets a later run reuse it.
gen_set() {
  local name="$1" dirs="$2" per="$3" size="$4"
  local dir="$DATA/$name/tree" spec="$DATA/$name/spec" want="$2x$3x$4"
  if [ -f "$spec" ] && [ "$(cat "$spec")" = "$want" ]; then return; fi
  log "generating $dir ($dirs x $per files of $size bytes)"
  rm -rf "$DATA/$name"
  mkdir -p "$dir"
  local d
  for d in $(seq -f '%03g' 0 $((dirs - 1))); do
    mkdir -p "$dir/d$d"
    head -c $((per * size)) /dev/urandom | split -b "$size" -d -a 6 - "$dir/d$d/obj-"
  done
  echo "$want" > "$spec"
}

# Server ------------------------------------------------------------------------------------
trap stop_server EXIT # start_server / stop_server: bench/lib.sh
# An empty bucket: stop the server, wipe its root (objects and .bucket-* metadata), restart.
reset_bucket() {
  stop_server
  rm -rf "$ROOT"
  mkdir -p "$ROOT/$BUCKET"
  sync
  start_server
}

# Tools -------------------------------------------------------------------------------------
RCLONE_CONF="$work/rclone.conf"
cat > "$RCLONE_CONF" <<EOF
[bench]
type = s3
provider = Other
endpoint = $ENDPOINT
access_key_id = $KEY
secret_access_key = $SECRET
region = us-east-1
force_path_style = true
EOF

now() { date +%s.%N; }

# record CASE TOOL OBJECTS BYTES SECONDS RSS_KB NOTE
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$RESULTS"; }

# ferry_copy CASE TOOL SRC_DIR EXPECT_OBJECTS [extra -p ...]: one timed ferry process.
ferry_copy() {
  local case="$1" tool="$2" src="$3" expect="$4"; shift 4
  local tag="${case%% *}-${tool// /}"
  local out="$LOGS/$tag.out" err="$LOGS/$tag.err" tf="$LOGS/time"
  sync
  local t0 t1
  t0=$(now)
  if ! (cd "$work" && env -u AWS_CA_BUNDLE /usr/bin/time -f %M -o "$tf" "$FERRY" run "$LUA" -q --yes \
        --state "$work/ferry-state" --fresh \
        -p src="$src" -p dst="s3://$BUCKET" -p endpoint="$ENDPOINT" \
        -p access_key="$KEY" -p secret_key="$SECRET" -p concurrency="$conc" "$@" \
        >"$out" 2>"$err"); then
    log "ferry failed ($case $tool): $(tail -n 5 "$err")"
  fi
  t1=$(now)
  local json copied skipped failed bytes note=""
  json=$(grep '^{' "$out" | tail -n 1 || true)
  copied=$(sed -n 's/.*"copied":\([0-9]*\).*/\1/p' <<<"$json")
  skipped=$(sed -n 's/.*"skipped":\([0-9]*\).*/\1/p' <<<"$json")
  failed=$(sed -n 's/.*"failed":\([0-9]*\).*/\1/p' <<<"$json")
  bytes=$(sed -n 's/.*"bytes":\([0-9]*\).*/\1/p' <<<"$json")
  if [ -z "$json" ] || [ "${failed:-1}" != 0 ] || [ $(( ${copied:-0} + ${skipped:-0} )) != "$expect" ]; then
    note="CHECK: expected $expect objects, got ${json:-no report}"
    log "$case $tool: $note"
  fi
  record "$case" "$tool" "$expect" "${bytes:-0}" "$(awk "BEGIN{print $t1-$t0}")" \
    "$(tail -n 1 "$tf")" "$note"
  log "$case $tool: $json"
}

# rclone_copy CASE TOOL SRC_DIR EXPECT_OBJECTS EXPECT_TRANSFERS BYTES [extra rclone flags]
rclone_copy() {
  local case="$1" tool="$2" src="$3" expect="$4" transfers="$5" bytes="$6"; shift 6
  local tag="${case%% *}-${tool// /}"
  local err="$LOGS/$tag.err" tf="$LOGS/time"
  sync
  local t0 t1 rc=0
  t0=$(now)
  env -u AWS_CA_BUNDLE /usr/bin/time -f %M -o "$tf" rclone --config "$RCLONE_CONF" copy "$src" "bench:$BUCKET" \
    --transfers "$conc" --checkers "$conc" --low-level-retries 1 \
    --stats 1h --stats-log-level NOTICE "$@" 2>"$err" || rc=$?
  t1=$(now)
  # Final stats: "Transferred: N / M, 100%" (files), "Checks: N / M", "Errors: N".
  local got errors note=""
  got=$(awk '/^Transferred:/ && !/B \// {print $2; exit}' "$err")
  errors=$(awk '/^Errors:/ {print $2; exit}' "$err")
  if [ "$rc" != 0 ] || [ "${got:-0}" != "$transfers" ] || [ -n "$errors" ]; then
    note="CHECK: rc=$rc transferred=${got:-0}/$transfers errors=${errors:-0}"
    log "$case $tool: $note (see $err)"
  fi
  record "$case" "$tool" "$expect" "$bytes" "$(awk "BEGIN{print $t1-$t0}")" "$(tail -n 1 "$tf")" "$note"
  log "$case $tool: $(awk "BEGIN{printf \"%.2f\", $t1-$t0}") s, rc=$rc, transferred ${got:-0}"
}

# Cases -------------------------------------------------------------------------------------
small_n=$((small_dirs * small_per))
many_n=$((many_dirs * many_per))
small="small-$layout"; many="many-$layout"
has_case 1 && gen_set "$small" "$small_dirs" "$small_per" "$small_size"
has_case 3 && gen_set large 1 "$large_n" "$large_size"
has_case 4 && gen_set "$many" "$many_dirs" "$many_per" "$many_size"
# Source bytes in the page cache for both tools alike.
for s in "$small" large "$many"; do
  if [ -d "$DATA/$s/tree" ]; then find "$DATA/$s/tree" -type f -print0 | xargs -0 cat > /dev/null; fi
done

lay=""; [ "$layout" = flat ] && lay=" (one folder)"
c1="1 first copy ${small_n}x4KiB$lay"
c2="2 again, nothing to copy$lay"
c3="3 ${large_n}x$((large_size >> 20))MiB"
c4="4 first copy ${many_n}x1KiB$lay"
c5="5 map on $map_keys keys"

run_ferry_12() {
  reset_bucket
  ferry_copy "$c1" ferry "$DATA/$small/tree" "$small_n"
  ferry_copy "$c2" ferry "$DATA/$small/tree" "$small_n"
}
run_rclone_12() {
  reset_bucket
  rclone_copy "$c1" rclone "$DATA/$small/tree" "$small_n" "$small_n" $((small_n * small_size))
  rclone_copy "$c2" rclone "$DATA/$small/tree" "$small_n" 0 0
  rclone_copy "$c2" "rclone --size-only" "$DATA/$small/tree" "$small_n" 0 0 --size-only
}
run_ferry_3() { reset_bucket; ferry_copy "$c3" ferry "$DATA/large/tree" "$large_n"; }
run_rclone_3() { reset_bucket; rclone_copy "$c3" rclone "$DATA/large/tree" "$large_n" "$large_n" $((large_n * large_size)); }
run_ferry_4() { reset_bucket; ferry_copy "$c4" ferry "$DATA/$many/tree" "$many_n"; }
run_rclone_4() { reset_bucket; rclone_copy "$c4" rclone "$DATA/$many/tree" "$many_n" "$many_n" $((many_n * many_size)); }

run_5() {
  local out="$LOGS/5.out" err="$LOGS/5.err" tf="$LOGS/time"
  if ! (cd "$work" && /usr/bin/time -f %M -o "$tf" "$FERRY" run "$LUA" -q --yes \
        --state "$work/ferry-state" --fresh -p mode=mapbench -p keys="$map_keys" -p rounds=5 \
        -p concurrency="$conc" >"$out" 2>"$err"); then
    log "mapbench failed: $(tail -n 5 "$err")"
    return
  fi
  local json; json=$(grep '^{' "$out" | tail -n 1)
  log "$c5: $json"
  local plain mapped
  plain=$(sed -n 's/.*"skip_plain":\([0-9.e+-]*\).*/\1/p' <<<"$json")
  mapped=$(sed -n 's/.*"skip_map":\([0-9.e+-]*\).*/\1/p' <<<"$json")
  record "$c5" "ferry (no map)" "$map_keys" 0 "$plain" "$(tail -n 1 "$tf")" ""
  record "$c5" "ferry (map)" "$map_keys" 0 "$mapped" "$(tail -n 1 "$tf")" ""
}

for i in $(seq 1 "$repeat"); do
  log "round $i of $repeat"
  # Alternate which tool goes first from one round to the next.
  for c in 12 3 4; do
    has_case "${c:0:1}" || continue
    if [ $((i % 2)) = 1 ]; then "run_ferry_$c"; "run_rclone_$c"; else "run_rclone_$c"; "run_ferry_$c"; fi
  done
  if has_case 5; then run_5; fi
done
stop_server
rm -rf "$ROOT"

print_table "$RESULTS" | tee "$work/table.md"
echo
echo "concurrency $conc; rounds $repeat (medians); raw results in $RESULTS; logs in $LOGS"
