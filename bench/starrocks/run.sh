#!/usr/bin/env bash
# starrocks-sync figures: a full sync of 300,000 rows (three partitions) and an incremental sync of
# one partition, through the StarRocks double (tests/starrocks/: MySQL-protocol front over MariaDB,
# Stream Load FE/BE), with ferry's peak RSS from /usr/bin/time -v. There is no peer tool to compare
# with (the official sync tool is a closed binary that needs real clusters), so this prints
# figures, not a ratio.
#
#   bench/starrocks/run.sh                       # release build into target-bench/, then the run
#   FERRY_BENCH_ROWS=1000000 FERRY_BENCH_DAYS=31 bench/starrocks/run.sh   # 1M rows, one partition
#   FERRY_BENCH_SCRIPT=/dir/starrocks-sync.lua bench/starrocks/run.sh     # that script (and the
#                                       # ferry/*.lua beside it) instead of the bundled one
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
log() { echo "[bench/starrocks] $*" >&2; }
. "$REPO/bench/lib.sh"
bench_ensure_cargo
cd "$REPO"
eval "$(bash tests/setup/mariadb.sh)"
log "load: $(uptime)"
log "building and running the figures test (release, CARGO_TARGET_DIR=target-bench)"
CARGO_TARGET_DIR="$REPO/target-bench" cargo test --release --locked --test it \
  -- --ignored procedure_starrocks::figures_full_and_incremental_sync_of_300k_rows --nocapture 2>&1 |
  grep -E "source load|full sync|copied|overwrite|incremental|test result" >&2
log "load: $(uptime)"
