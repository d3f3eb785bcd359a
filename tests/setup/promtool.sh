#!/usr/bin/env bash
# Makes sure `promtool` (Prometheus' own checker, Debian's `prometheus` package) is on PATH:
# tests/metrics.rs scrapes `ferry run --metrics` and has promtool parse the answer and check the
# Prometheus naming rules (`promtool check metrics`). Installs the package with apt-get when
# missing (as root), without starting its service. Prints nothing on stdout (tests/run.sh evals
# stdout). Under CI=true a missing promtool is an error; elsewhere the test prints SKIPPED.
set -euo pipefail
log() { echo "[setup/promtool] $*" >&2; }
if command -v promtool >/dev/null 2>&1; then
  log "promtool is $(command -v promtool)"
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  log "installing prometheus (for promtool) with apt-get"
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
    trap '[ "$made_policy" = 1 ] && rm -f "$policy"' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends prometheus >&2
  hash -r
fi
if command -v promtool >/dev/null 2>&1; then
  log "promtool is $(command -v promtool)"
elif [ "${CI:-}" = true ]; then
  log "promtool is missing and could not be installed"
  exit 1
else
  log "promtool is missing and cannot be installed here (need root and apt-get); the metrics test is skipped"
fi
