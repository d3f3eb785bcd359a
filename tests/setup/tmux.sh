#!/usr/bin/env bash
# Makes sure tmux is on PATH: tests/terminal.rs drives `ferry repl` and `ferry run` in a real
# terminal (send-keys, paste-buffer, capture-pane). Installs it with apt-get when missing (as
# root). Prints nothing on stdout: the tests need no environment from it (tests/run.sh evals it).
set -euo pipefail
log() { echo "[setup/tmux] $*" >&2; }
if command -v tmux >/dev/null 2>&1; then
  log "tmux is $(command -v tmux)"
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  log "installing tmux with apt-get"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux >&2
else
  log "tmux is missing and cannot be installed here (need root and apt-get)"
  exit 1
fi
