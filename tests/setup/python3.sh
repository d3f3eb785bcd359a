#!/usr/bin/env bash
# Makes sure python3 is on PATH: the Pegasus doubles (tests/doubles/pegasus/) are Python 3 programs
# (stdlib only). Installs it with apt-get when missing (as root). Prints nothing on stdout: the
# tests need no environment from it (tests/run.sh evals stdout).
set -euo pipefail
log() { echo "[setup/python3] $*" >&2; }
if command -v python3 >/dev/null 2>&1; then
  log "python3 is $(command -v python3)"
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  log "installing python3 with apt-get"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >&2
else
  log "python3 is missing and cannot be installed here (need root and apt-get)"
  exit 1
fi
