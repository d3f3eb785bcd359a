#!/usr/bin/env bash
# Throttle accuracy: ferry.store.copy between two local folders (file:// stores) held at
# 20 MB/s (20,000,000 bytes/s, decimal) and at 200 objects/s, over copies of 30+ s, and a copy
# whose byte rate is doubled with limiter:set_rate() 10 s in. Prints one markdown table.
# See bench/throttle/README.md.
#
#   bench/throttle/run.sh               # full run: about 4 minutes, plus a first build
#   bench/throttle/run.sh --quick       # smaller copies (about 10 s each): a smoke run
#
# Options: --no-setup (no apt-get, no cargo build), --work DIR (data and time series;
# default /dev/shm/ferry-bench-throttle, or /tmp when there is no /dev/shm), --keep (leave the
# data and the series in WORK).
#
# Works on a fresh Debian machine as root: installs a C compiler when
# missing and builds ferry with CARGO_TARGET_DIR=target-bench (never target/).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/../.." && pwd)"
TARGET="$REPO/target-bench"
FERRY="$TARGET/release/ferry"
LUA="$REPO/bench/throttle/throttled.lua"

quick=0
setup=1
keep=0
work=/dev/shm/ferry-bench-throttle
[ -d /dev/shm ] || work=/tmp/ferry-bench-throttle
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --no-setup) setup=0 ;;
    --work) work="$2"; shift ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
log() { echo "[bench/throttle] $*" >&2; }
# shellcheck source=../lib.sh
source "$REPO/bench/lib.sh"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy

# Setup --------------------------------------------------------------------------------------
if [ "$setup" = 1 ]; then
  missing=()
  command -v cc >/dev/null || missing+=(build-essential)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    bench_apt_install "${missing[@]}"
  fi
  bench_ensure_cargo
  bench_build_ferry
fi
[ -x "$FERRY" ] || { echo "missing $FERRY (run without --no-setup)" >&2; exit 1; }

# Data ---------------------------------------------------------------------------------------
# big: 1 MiB files, 1,200 of them (1,258,291,200 bytes: 63 s at 20 MB/s).
# small: 1 KiB files, 8,000 of them (40 s at 200 objects/s).
if [ "$quick" = 1 ]; then n_big=240; n_small=2000; change_after=4; else n_big=1200; n_small=8000; change_after=10; fi
rm -rf "$work"
mkdir -p "$work/big" "$work/small"
trap '[ "$keep" = 1 ] || rm -rf "$work"' EXIT
log "generating $n_big x 1 MiB and $n_small x 1 KiB files in $work"
(cd "$work/big" && head -c $((n_big * 1048576)) /dev/urandom | split -b 1048576 -a 5 -d - f)
(cd "$work/small" && head -c $((n_small * 1024)) /dev/urandom | split -b 1024 -a 5 -d - f)

now() { date +%s.%N; }
jget() { sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p" <<<"$2"; }

# run NAME ARGS...: one copy in its own process; leaves $work/NAME.json (the script's JSON line
# plus the process wall time) and $work/NAME.tsv (the destination time series).
run() {
  local name="$1"; shift
  rm -rf "$work/out-$name"
  sync
  log "run $name: $*"
  local t0 t1 out
  t0=$(now)
  out=$("$FERRY" run "$LUA" -q --state "$work/state-$name" -p dst="$work/out-$name" \
    -p series="$work/$name.tsv" "$@" | tail -1)
  t1=$(now)
  echo "$out" >"$work/$name.json"
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }' >"$work/$name.wall"
  rm -rf "$work/out-$name" "$work/state-$name"
}

# The copies. Concurrency 64 is ferry's default. With 1 MiB objects, 64 transfers share the
# limit and finish together, so bytes land at the destination in ~64 MiB steps every ~3.3 s:
# the same copy at concurrency 4 gives a time series fine enough for 30 s windows.
run bytes64 -p src="$work/big" -p bytes_per_second=20000000 -p concurrency=64
run bytes4 -p src="$work/big" -p bytes_per_second=20000000 -p concurrency=4
run ops64 -p src="$work/small" -p objects_per_second=200 -p concurrency=64
run change -p src="$work/big" -p bytes_per_second=20000000 -p concurrency=4 \
  -p change_after="$change_after" -p change_to=40000000

# The time series of the copy whose rate changes, on stderr (MB/s in each sampling interval).
log "time series of the rate change (20 -> 40 MB/s at ${change_after} s): t, MB landed, MB/s since the previous sample"
awk -F'\t' 'NR > 1 { if (NR > 2 && $1 - pt >= 0.5) printf "  %6.2f s %8.1f MB %6.1f MB/s\n", $1, $2 / 1e6, ($2 - pb) / 1e6 / ($1 - pt); pt = $1; pb = $2 }' \
  "$work/change.tsv" >&2

# Table --------------------------------------------------------------------------------------
# window_stats TSV COL LIMIT: over every 30 s window [t, t + 30] that starts at a sample (the
# series is interpolated linearly at t + 30), the lowest and highest rate of column COL
# (2 bytes, 3 objects), as deviations from LIMIT in %. "-" when the copy is shorter than 35 s.
window_stats() {
  awk -F'\t' -v col="$2" -v lim="$3" '
    NR > 1 { n++; t[n] = $1; v[n] = $col }
    END {
      lo = ""; hi = ""
      for (i = 1; i <= n; i++) {
        te = t[i] + 30; if (te > t[n]) break
        for (j = i; j < n && t[j + 1] < te; j++) ;
        ve = v[j] + (v[j + 1] - v[j]) * (te - t[j]) / (t[j + 1] - t[j])
        r = (ve - v[i]) / 30
        if (lo == "" || r < lo) lo = r; if (hi == "" || r > hi) hi = r
      }
      if (lo == "" || t[n] < 35) print "-"
      else printf "%+.1f%% / %+.1f%%\n", 100 * (lo / lim - 1), 100 * (hi / lim - 1)
    }' "$1"
}
# rate_between TSV T0 T1: bytes/s landed between T0 and T1 (interpolated); T1 < 0 means the end.
rate_between() {
  awk -F'\t' -v a="$2" -v b="$3" '
    function at(x,   j) { for (j = 1; j < n && t[j + 1] < x; j++) ; return v[j] + (v[j + 1] - v[j]) * (x - t[j]) / (t[j + 1] - t[j]) }
    NR > 1 { n++; t[n] = $1; v[n] = $2 }
    END { if (b < 0) b = t[n]; printf "%.0f\n", (at(b) - at(a)) / (b - a) }' "$1"
}
fmt_int() { awk -v x="$1" 'BEGIN { s = sprintf("%.0f", x); o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) }; print s o }'; }
dev() { awk -v x="$1" -v l="$2" 'BEGIN { printf "%+.2f%%", 100 * (x / l - 1) }'; }

row() { # row NAME LABEL LIMIT UNIT(bytes|objects)
  local j wall count secs rep wr col unit
  j=$(cat "$work/$1.json"); wall=$(cat "$work/$1.wall")
  if [ "$4" = bytes ]; then count=$(jget bytes "$j"); col=2; unit="B/s"; else count=$(jget copied "$j"); col=3; unit="obj/s"; fi
  secs=$(jget seconds "$j")
  rep=$(awk -v c="$count" -v s="$secs" 'BEGIN { printf "%.4f\n", c / s }')
  wr=$(awk -v c="$count" -v s="$wall" 'BEGIN { printf "%.4f\n", c / s }')
  if [ "$4" = bytes ]; then repf="$(fmt_int "$rep") $unit"; wrf="$(fmt_int "$wr") $unit"
  else repf="$(printf '%.1f' "$rep") $unit"; wrf="$(printf '%.1f' "$wr") $unit"; fi
  printf '| %s | %s | %s | %.1f | %s (%s) | %.1f | %s (%s) | %s |\n' "$2" "$(fmt_int "$3") $unit" \
    "$(fmt_int "$count")" "$secs" "$repf" "$(dev "$rep" "$3")" "$wall" "$wrf" "$(dev "$wr" "$3")" \
    "$(window_stats "$work/$1.tsv" "$col" "$3")"
}

echo
echo "| copy | limit | moved | report s | report rate (dev.) | wall s | wall rate (dev.) | 30 s windows: lowest / highest dev. |"
echo "|---|--:|--:|--:|--:|--:|--:|--:|"
row bytes64 "$n_big x 1 MiB, concurrency 64" 20000000 bytes
row bytes4 "$n_big x 1 MiB, concurrency 4" 20000000 bytes
row ops64 "$n_small x 1 KiB, concurrency 64" 200 objects
# The rate change: 20 MB/s until change_after, then 40 MB/s. Before: from 1 s (after the
# initial burst of one second's worth) to the change; after: from 1 s after the change to the end.
j=$(cat "$work/change.json"); wall=$(cat "$work/change.wall")
at=$(jget changed_at "$j")
before=$(rate_between "$work/change.tsv" 1 "$at")
after=$(rate_between "$work/change.tsv" "$(awk -v a="$at" 'BEGIN { print a + 1 }')" -1)
printf '| %s | %s | %s | %.1f | before: %s B/s (%s) | %.1f | after: %s B/s (%s) | set_rate at %.2f s |\n' \
  "$n_big x 1 MiB, concurrency 4, set_rate(40,000,000) ${change_after} s in" "20,000,000 then 40,000,000 B/s" \
  "$(fmt_int "$(jget bytes "$j")")" "$(jget seconds "$j")" "$(fmt_int "$before")" "$(dev "$before" 20000000)" \
  "$wall" "$(fmt_int "$after")" "$(dev "$after" 40000000)" "$at"
