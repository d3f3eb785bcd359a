#!/usr/bin/env bash
# Makes sure moto's S3 server (PyPI `moto[server]`, run as `python -m moto.server`) can be started
# by the tests: an AWS-faithful S3 that, unlike the in-process s3s-fs, implements
# ListMultipartUploads (tests/store_multipart_abort.rs starts one per test on a free port).
#
# Run by tests/run.sh (as root on a fresh Debian machine, or anywhere python3 -m venv works):
#   - installs `moto[server]==$MOTO_VERSION` into a virtualenv in a cache folder when missing
#     (python3 and its venv module come from apt-get when missing),
#   - checks that `python -m moto.server --help` runs,
#   - prints `export FERRY_TEST_MOTO_PYTHON=<venv>/bin/python` on stdout.
# Everything else goes to stderr. Idempotent: an existing working venv is only checked.
#
# Environment knobs:
#   MOTO_VERSION  moto version (default 5.2.6)
#   MOTO_HOME     the venv folder (default ${XDG_CACHE_HOME:-$HOME/.cache}/ferry/moto-$MOTO_VERSION)
set -euo pipefail

version="${MOTO_VERSION:-5.2.6}"
home="${MOTO_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry/moto-$version}"
py="$home/bin/python"

log() { echo "[setup/moto] $*" >&2; }

works() { [ -x "$py" ] && "$py" -m moto.server --help >/dev/null 2>&1; }

if works; then
  log "moto $version is in $home"
  echo "export FERRY_TEST_MOTO_PYTHON=$py"
  exit 0
fi

if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    log "installing python3 and python3-venv with apt-get"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >&2
  else
    log "python3 with its venv module is missing and cannot be installed here (need root and apt-get)"
    exit 1
  fi
fi

log "installing moto[server]==$version into the venv $home"
rm -rf "$home"
mkdir -p "$(dirname "$home")"
python3 -m venv "$home" >&2
"$py" -m pip install --quiet --disable-pip-version-check "moto[server]==$version" >&2

if ! works; then
  log "moto was installed but 'python -m moto.server --help' fails:"
  "$py" -m moto.server --help >&2 || true
  exit 1
fi
log "moto $version installed in $home"
echo "export FERRY_TEST_MOTO_PYTHON=$py"
