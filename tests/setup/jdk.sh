#!/usr/bin/env bash
# Makes sure `java` and `javac` are on PATH: the Druid zip test reads every index.zip ferry writes
# with java.util.zip.ZipInputStream (tests/java/ZipCheck.java), as Druid's S3 and GCS pullers do.
# Installs default-jdk-headless with apt-get when missing (as root). Prints nothing on stdout: the
# tests need no environment from it (tests/run.sh evals stdout).
set -euo pipefail
log() { echo "[setup/jdk] $*" >&2; }
if command -v java >/dev/null 2>&1 && command -v javac >/dev/null 2>&1; then
  log "java is $(command -v java)"
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  log "installing default-jdk-headless with apt-get"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jdk-headless >&2
else
  log "java is missing and cannot be installed here (need root and apt-get)"
  exit 1
fi
