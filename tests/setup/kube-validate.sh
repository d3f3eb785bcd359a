#!/usr/bin/env bash
# Makes sure `kubernetes-validate` (PyPI; Kubernetes' JSON schemas, offline) is installed: the
# scale-out tests validate the manifests `ferry kube` renders with it. Installs it with pip when
# missing (python3 and pip with apt-get first, as root, when those are missing). Prints nothing on
# stdout (tests/run.sh evals stdout); the tests print SKIPPED when it cannot be installed.
set -uo pipefail
log() { echo "[setup/kube-validate] $*" >&2; }
if command -v kubernetes-validate >/dev/null 2>&1; then
  log "kubernetes-validate is $(command -v kubernetes-validate)"
  exit 0
fi
apt_install() {
  command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ] || return 1
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}
if ! command -v python3 >/dev/null 2>&1; then
  log "installing python3"
  apt_install python3 || { log "python3 is missing; the manifest validation test will be skipped"; exit 0; }
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
  log "installing pip"
  apt_install python3-pip || { log "pip is missing; the manifest validation test will be skipped"; exit 0; }
fi
for args in "" "--user" "--break-system-packages" "--user --break-system-packages"; do
  # shellcheck disable=SC2086
  if python3 -m pip install -q $args kubernetes-validate >&2 2>&1; then
    log "installed kubernetes-validate (pip install $args)"
    command -v kubernetes-validate >/dev/null 2>&1 ||
      log "note: kubernetes-validate is not on PATH (pip's script folder, e.g. ~/.local/bin, is missing from PATH)"
    exit 0
  fi
done
log "could not install kubernetes-validate with pip; the manifest validation test will be skipped"
exit 0
