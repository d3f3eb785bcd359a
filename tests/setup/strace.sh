#!/usr/bin/env bash
# Makes sure strace is on PATH: tests/procedure_seafile_conf.rs traces ferry's syscalls to check
# that filesystem destinations flush each object and its folder before the object list records
# it. Installs it with apt-get when missing (as root). Prints nothing on stdout (tests/run.sh
# evals stdout).
set -euo pipefail
log() { echo "[setup/strace] $*" >&2; }
if command -v strace >/dev/null 2>&1; then
  log "strace is $(command -v strace)"
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  log "installing strace with apt-get"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >&2
else
  log "strace is missing and cannot be installed here (need root and apt-get); the fsync-order test is skipped"
fi
