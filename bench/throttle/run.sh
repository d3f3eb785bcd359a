#!/usr/bin/env bash
# Throttle benchmark: a copy limited to 20 MB/s and one limited to 200 objects/s, each over 30+ s,
# report how close the achieved rate is to the limit; plus a copy whose rate doubles midway.
# Local folders on /dev/shm so the disk is never the limit. See bench/throttle/README.md.
#   bench/throttle/run.sh [--no-build]
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
FERRY="$REPO/target-bench/release/ferry"
WORK=/dev/shm/ferry-bench-throttle
[ -d /dev/shm ] || WORK=/tmp/ferry-bench-throttle
if [ "${1:-}" != "--no-build" ]; then
  (cd "$REPO" && CARGO_TARGET_DIR="$REPO/target-bench" cargo build --release --locked >&2)
fi
rm -rf "$WORK"; mkdir -p "$WORK/big" "$WORK/small"
# 640 x 1 MiB (32 s at 20 MB/s) and 6,400 x 1 KiB (32 s at 200 objects/s).
for i in $(seq 1 640); do head -c 1048576 /dev/urandom > "$WORK/big/f$i"; done
for d in $(seq 1 64); do mkdir -p "$WORK/small/d$d"; for i in $(seq 1 100); do head -c 1024 /dev/urandom > "$WORK/small/d$d/f$i"; done; done
run() { "$FERRY" run "$REPO/bench/throttle/throttled.lua" -q --state "$WORK/state-$1" "${@:2}" | tail -1; }
bytes=$(run bytes -p src="$WORK/big" -p dst="$WORK/out-bytes" -p bytes_per_second=20000000)
objs=$(run objs -p src="$WORK/small" -p dst="$WORK/out-objs" -p objects_per_second=200)
double=$(run double -p src="$WORK/big" -p dst="$WORK/out-double" -p bytes_per_second=10000000 -p double_after=20s)
python3 - "$bytes" "$objs" "$double" <<'PY'
import json, sys
b, o, d = (json.loads(x) for x in sys.argv[1:4])
print("| copy | limit | achieved | deviation | seconds |")
print("|---|--:|--:|--:|--:|")
print(f"| 640 x 1 MiB | 20,000,000 B/s | {b['bytes_per_second']:,.0f} B/s | {100*(b['bytes_per_second']/20e6-1):+.2f}% | {b['seconds']:.1f} |")
print(f"| 6,400 x 1 KiB | 200 objects/s | {o['objects_per_second']:.1f} objects/s | {100*(o['objects_per_second']/200-1):+.2f}% | {o['seconds']:.1f} |")
# 10 MB/s for 20 s then 20 MB/s: 200 MB in 20 s, the remaining ~471 MB at 20 MB/s.
expected = 20 + (d['bytes'] - 10e6*20) / 20e6
print(f"| 640 x 1 MiB, 10 MB/s doubled to 20 MB/s after 20 s | set_rate | {d['seconds']:.1f} s total | {100*(d['seconds']/expected-1):+.2f}% vs {expected:.1f} s expected | {d['seconds']:.1f} |")
PY
rm -rf "$WORK"
