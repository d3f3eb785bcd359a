#!/usr/bin/env bash
# The test command (see README.md). On a fresh Debian machine, as root, it installs or starts
# what the tests need when it is missing, then runs the whole suite.
#
#   tests/run.sh            # everything
#   tests/run.sh --no-setup # skip the setup, just cargo test
#   tests/run.sh -- ARGS    # extra arguments for cargo test
set -euo pipefail
cd "$(dirname "$0")/.."

setup=1
cargo_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-setup) setup=0 ;;
    --) shift; cargo_args=("$@"); break ;;
    *) cargo_args+=("$1") ;;
  esac
  shift
done

log() { echo "[tests/run.sh] $*" >&2; }

if [ "$setup" = 1 ]; then
  for script in tests/setup/*.sh; do
    [ -e "$script" ] || continue
    log "setup: $script"
    # Each setup script prints the environment the tests need (export KEY=VALUE lines). A setup
    # that fails stops the run here: `eval "$(...)"` alone would swallow its exit status and the
    # tests would then skip or fail far from the cause.
    if ! env_lines="$(bash "$script")"; then
      log "setup failed: $script (its messages are above); nothing was tested"
      exit 1
    fi
    eval "$env_lines"
  done
fi

log "cargo test ${cargo_args[*]:-}"
cargo test --locked --no-fail-fast "${cargo_args[@]}"
