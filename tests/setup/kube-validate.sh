#!/usr/bin/env bash
# Makes sure `kubernetes-validate` (PyPI; Kubernetes' JSON schemas, offline) is installed: the
# scale-out tests validate the manifests `ferry kube` renders with it. Installs it with pip when
# missing. Prints nothing on stdout (tests/run.sh evals stdout); tests skip with a message when it
# cannot be installed.
set -uo pipefail
log() { echo "[setup/kube-validate] $*" >&2; }
if command -v kubernetes-validate >/dev/null 2>&1; then
  log "kubernetes-validate is $(command -v kubernetes-validate)"
  exit 0
fi
if ! command -v python3 >/dev/null 2>&1; then
  log "python3 is missing; the manifest validation tests will be skipped"
  exit 0
fi
for args in "" "--user" "--break-system-packages" "--user --break-system-packages"; do
  # shellcheck disable=SC2086
  if python3 -m pip install -q $args kubernetes-validate >&2 2>&1; then
    log "installed kubernetes-validate (pip install $args)"
    exit 0
  fi
done
log "could not install kubernetes-validate with pip; the manifest validation tests will be skipped"
exit 0
