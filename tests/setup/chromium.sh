#!/usr/bin/env bash
# Makes sure Debian's headless-capable Chromium is on PATH: tests/status_html.rs renders the
# `ferry status --html` page with `chromium --headless --screenshot` and checks the plot is drawn.
# Installs the package with apt-get when missing (as root). Prints nothing on stdout (tests/run.sh
# evals stdout). Under CI=true a missing chromium is an error; elsewhere the test prints SKIPPED.
set -euo pipefail
log() { echo "[setup/chromium] $*" >&2; }
if command -v chromium >/dev/null 2>&1; then
  log "chromium is $(command -v chromium)"
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  log "installing chromium with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium >&2
  hash -r
fi
if command -v chromium >/dev/null 2>&1; then
  log "chromium is $(command -v chromium)"
elif [ "${CI:-}" = true ]; then
  log "chromium is missing and could not be installed"
  exit 1
else
  log "chromium is missing and cannot be installed here (need root and apt-get); the page test is skipped"
fi
