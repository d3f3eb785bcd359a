#!/usr/bin/env bash
# The type checker of tests/lua_types.rs: emmylua_check (EmmyLua's analyzer, which reads LuaLS
# annotations; lua-language-server itself is in none of the registries this project reaches: not
# on npm, crates.io or Debian). It is a crate, so installing it is a `cargo install` of ~15
# minutes on two cores: done only with FERRY_INSTALL_EMMYLUA=1 (into ~/.cargo/bin, kept on the
# machine), so CI time does not grow. Prints nothing on stdout (tests/run.sh evals stdout); without
# the checker the test prints SKIPPED and why.
set -euo pipefail
log() { echo "[setup/emmylua] $*" >&2; }
if command -v emmylua_check >/dev/null 2>&1; then
  log "emmylua_check is $(command -v emmylua_check)"
  exit 0
fi
if [ "${FERRY_INSTALL_EMMYLUA:-}" = 1 ]; then
  log "installing emmylua_check with cargo install (takes a while)"
  nice -n 10 cargo install --locked emmylua_check >&2
  log "emmylua_check is $(command -v emmylua_check || echo missing)"
else
  log "emmylua_check is missing; FERRY_INSTALL_EMMYLUA=1 installs it (cargo install emmylua_check); the stub type check is skipped"
fi
