#!/usr/bin/env bash
# Makes sure strace is on PATH: tests/procedure_seafile_conf.rs traces ferry's syscalls to check
# that filesystem destinations flush each object and its folder before the object list records
# it. Installs it with apt-get when missing (as root). Without it the test is skipped, except
# under CI=true, where this script exits 1 (and the test fails) rather than let the check go
# unrun. Prints nothing on stdout (tests/run.sh evals stdout).
set -euo pipefail
log() { echo "[setup/strace] $*" >&2; }
if command -v strace >/dev/null 2>&1; then
  log "strace is $(command -v strace)"
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  log "installing strace with apt-get"
  if apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >&2 \
      && command -v strace >/dev/null 2>&1; then
    exit 0
  fi
  log "apt-get could not install strace"
fi
if [ "${CI:-}" = "true" ]; then
  log "strace is missing and cannot be installed (need root and apt-get); CI=true, so this is an error"
  exit 1
fi
log "strace is missing and cannot be installed here (need root and apt-get); the fsync-order test is skipped"
