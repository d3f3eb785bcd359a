#!/usr/bin/env bash
# Seafile migration benchmark: ferry's seafile-migrate (fs backend -> S3) against rclone copying
# the same three folders into three buckets, same s3s-fs server, same total concurrency.
# See bench/seafile/README.md.   bench/seafile/run.sh [--no-build] [--libraries N]
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
FERRY="$REPO/target-bench/release/ferry"
S3S="$REPO/bench/.tools/bin/s3s-fs"
LIBS=20; CONC=32; PORT=18015; build=1
while [ $# -gt 0 ]; do
  case "$1" in --no-build) build=0 ;; --libraries) LIBS="$2"; shift ;; esac; shift
done
export DEBIAN_FRONTEND=noninteractive
command -v rclone >/dev/null || { apt-get update -q >&2; apt-get install -y -q rclone >&2; }
[ -x /usr/bin/time ] || apt-get install -y -q time >&2
if [ "$build" = 1 ]; then
  (cd "$REPO" && CARGO_TARGET_DIR="$REPO/target-bench" cargo build --release --locked >&2)
fi
if [ ! -x "$S3S" ]; then  # 0.14.1: the newest s3s-fs that builds with rustc 1.95
  CARGO_TARGET_DIR="$REPO/target-bench/s3s-fs" cargo install s3s-fs --version 0.14.1 --features binary --locked --root "$REPO/bench/.tools" >&2
fi
WORK=/dev/shm/ferry-bench-seafile; [ -d /dev/shm ] || WORK=/tmp/ferry-bench-seafile
rm -rf "$WORK"; mkdir -p "$WORK"
N=$(python3 "$REPO/bench/seafile/gen.py" "$WORK/site" "$LIBS")
KEY=benchkey; SECRET=benchsecret-0123456789; ROOT="$WORK/s3root"
mkdir -p "$WORK/site/conf" "$WORK/new-conf"
printf '[fileserver]\nport = 8082\n' > "$WORK/site/conf/seafile.conf"
: > "$WORK/new-conf/seafile.conf"
for t in commit_object_backend:commits fs_object_backend:fs block_backend:blocks; do
  printf '[%s]\nname = s3\nbucket = sea-%s\nkey_id = %s\nkey = %s\nhost = 127.0.0.1:%s\npath_style_request = true\nuse_v4_signature = true\naws_region = us-east-1\n\n' \
    "${t%%:*}" "${t##*:}" "$KEY" "$SECRET" "$PORT" >> "$WORK/new-conf/seafile.conf"
done
pid=""
stop() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi
}
trap 'stop; rm -rf "$WORK"' EXIT
fresh_server() {
  stop; rm -rf "$ROOT"; mkdir -p "$ROOT/sea-commits" "$ROOT/sea-fs" "$ROOT/sea-blocks"
  "$S3S" --host 127.0.0.1 --port "$PORT" --access-key "$KEY" --secret-key "$SECRET" "$ROOT" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return; sleep 0.1; done
  echo "s3s-fs did not start" >&2; exit 1
}
count() { find "$ROOT/sea-commits" "$ROOT/sea-fs" "$ROOT/sea-blocks" -type f | wc -l; }
now() { date +%s.%N; }
bytes=$(du -sb "$WORK/site/seafile-data/storage" | cut -f1)

fresh_server
t0=$(now)
env -u AWS_CA_BUNDLE /usr/bin/time -f %M -o "$WORK/ferry.rss" "$FERRY" run seafile-migrate --yes -q --state "$WORK/state" \
  -p conf_dir="$WORK/site/conf" -p seafile_data="$WORK/site/seafile-data" -p dest_conf_dir="$WORK/new-conf" \
  -p phase=initial -p concurrency="$CONC" >/dev/null
t1=$(now); ferry_n=$(count)

fresh_server
cat > "$WORK/rclone.conf" <<CONF
[s]
type = s3
provider = Other
endpoint = http://127.0.0.1:$PORT
access_key_id = $KEY
secret_access_key = $SECRET
region = us-east-1
force_path_style = true
CONF
t2=$(now)
for t in commits fs blocks; do
  env -u AWS_CA_BUNDLE /usr/bin/time -f %M -o "$WORK/rclone-$t.rss" rclone --config "$WORK/rclone.conf" copy \
    "$WORK/site/seafile-data/storage/$t" "s:sea-$t" --transfers "$CONC" --checkers "$CONC" --low-level-retries 1 -q &
done
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
t3=$(now); rclone_n=$(count)
python3 - "$t0" "$t1" "$t2" "$t3" "$N" "$bytes" "$ferry_n" "$rclone_n" "$(cat "$WORK/ferry.rss")" \
  "$(cat "$WORK"/rclone-*.rss | sort -n | tail -1)" "$CONC" <<'PY'
import sys
t0, t1, t2, t3 = map(float, sys.argv[1:5]); n, b, fn, rn, frss, rrss, c = map(int, sys.argv[5:12])
f, r = t1 - t0, t3 - t2
print("| tool | objects | MB | seconds | objects/s | MB/s | peak RSS MB | ferry/rclone |")
print("|---|--:|--:|--:|--:|--:|--:|--:|")
print(f"| ferry seafile-migrate (phase=initial, concurrency {c} per type) | {fn} | {b/1e6:.1f} | {f:.2f} | {n/f:,.0f} | {b/1e6/f:.1f} | {frss//1024} | |")
print(f"| 3 x rclone copy (one per type, --transfers/--checkers {c}) | {rn} | {b/1e6:.1f} | {r:.2f} | {n/r:,.0f} | {b/1e6/r:.1f} | {rrss//1024} (largest) | {r/f:.2f}x |")
PY
