#!/usr/bin/env bash
# Case 4 of issue 20 at its full size, 1,000,000 objects of 1 KiB, where s3s-fs cannot take it:
# its ListObjectsV2 walks and stats the whole bucket for every page (see bench/README.md), so one
# listing of 1M keys costs it ~1e9 stats. The engine is the same for every store, so this measures
# ferry's memory and its re-run against one listing with a local folder as the destination
# (file:// on a tmpfs): peak RSS of the first copy (target < 300 MB) and the re-run's time against
# one listing of the destination (target < 2x).
#
#   bench/copy/million.sh [--objects N] [--ferry PATH] [--work DIR] [--dst DIR] [--again-only]
#
# --again-only keeps the destination of an earlier run and measures the listing and the re-run.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
objects=1000000
ferry="$REPO/target-bench/release/ferry"
work=/tmp/ferry-bench-million
dst=/dev/shm/ferry-bench-million-dst
again_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --objects) objects="$2"; shift ;;
    --ferry) ferry="$2"; shift ;;
    --work) work="$2"; shift ;;
    --dst) dst="$2"; shift ;;
    --again-only) again_only=1 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
log() { echo "[bench/million] $*" >&2; }
[ -x "$ferry" ] || { log "no ferry binary at $ferry (build: CARGO_TARGET_DIR=target-bench cargo build --release)"; exit 1; }
[ -x /usr/bin/time ] || { log "GNU time is missing (apt-get install time)"; exit 1; }
src="$work/src"
mkdir -p "$work"
if [ "$(cat "$work/src.count" 2>/dev/null)" != "$objects" ]; then
  log "generating $objects objects of 1 KiB in $src (1,000 per folder)"
  rm -rf "$src"
  python3 - "$src" "$objects" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
data = bytes(range(256)) * 4
for i in range(n):
    d = os.path.join(root, "d%04d" % (i // 1000))
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "obj-%07d" % i), "wb") as f:
        f.write(data)
PY
  echo "$objects" > "$work/src.count"
fi
[ "$again_only" = 1 ] || { rm -rf "$dst"; mkdir -p "$dst"; }
run() { # label, extra params...
  local label="$1"; shift
  sync
  local t0 t1
  t0=$(date +%s.%N)
  env -u AWS_CA_BUNDLE /usr/bin/time -f "%M %U %S" -o "$work/time.$label" \
    "$ferry" run "$REPO/bench/copy/copy.lua" -q --yes --state "$work/state.$label" "$@" \
    > "$work/out.$label" 2> "$work/err.$label"
  t1=$(date +%s.%N)
  read -r rss user sys < "$work/time.$label"
  printf '%s\t%.2f\t%d\t%.1f\t%s\n' "$label" "$(echo "$t1 - $t0" | bc)" "$((rss / 1000))" \
    "$(echo "$user + $sys" | bc)" "$(tail -n1 "$work/out.$label")"
}
log "load: $(uptime)"
{
  if [ "$again_only" = 1 ]; then
    grep -P '^first\t' "$work/results.tsv" || true
  else
    run first -p "src=$src" -p "dst=$dst" -p concurrency=64
  fi
  run list -p mode=list -p "dst=$dst"
  run again -p "src=$src" -p "dst=$dst" -p concurrency=64
} > "$work/results.new"
mv "$work/results.new" "$work/results.tsv"
cat "$work/results.tsv" >&2
log "load: $(uptime)"
awk -F'\t' -v n="$objects" '
  { s[$1] = $2; r[$1] = $3; c[$1] = $4 }
  END {
    print "| run | seconds | peak RSS MB | CPU s | target |"
    print "|---|--:|--:|--:|---|"
    printf "| first copy of %d x 1 KiB (local -> file:// tmpfs) | %s | %s | %s | %s |\n", n, s["first"], r["first"], c["first"], (r["first"] < 300 ? "met (RSS < 300 MB)" : "MISSED (RSS < 300 MB)")
    printf "| one listing of the destination (as the engine lists it) | %s | %s | %s |  |\n", s["list"], r["list"], c["list"]
    printf "| again, nothing to copy | %s | %s | %s | %.2fx one listing: %s |\n", s["again"], r["again"], c["again"], s["again"] / s["list"], (s["again"] < 2 * s["list"] ? "met (< 2x)" : "MISSED (< 2x)")
  }' "$work/results.tsv"
