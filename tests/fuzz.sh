#!/usr/bin/env bash
# The parser fuzz tests of issue 22 ("Garbage in"), alone: the proptest cases beside each
# pure-Rust parser (cargo test --lib fuzz) and the Lua-runtime ones (tests/fuzz_inputs.rs).
# They also run in the normal suite (tests/run.sh) with their per-run case counts.
#
#   tests/fuzz.sh           # the per-run case counts (docs/reliability.md, "Garbage in")
#   tests/fuzz.sh --long    # 100 times as many cases (FERRY_FUZZ_LONG=1)
#   PROPTEST_CASES=N tests/fuzz.sh   # exactly N cases per fuzz test
#
# A failure is shrunk and saved under proptest-regressions/ (and
# tests/fuzz_inputs.proptest-regressions); commit those files with the fix and a named
# regression #[test], as the existing ones are.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--long" ]; then
  export FERRY_FUZZ_LONG=1
fi
cargo test --lib fuzz
cargo test --test it fuzz_inputs::
