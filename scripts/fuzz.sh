#!/usr/bin/env bash
# Fuzzes the parsers that face the network with libFuzzer (cargo fuzz, nightly toolchain).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   run each target for SECONDS (default 600), one after another
#   scripts/fuzz.sh --build                 build every target (unoptimised), run none (what CI does)
#
# Seeds are committed in fuzz/seeds/<target>/; the growing corpus lives in fuzz/corpus/<target>/
# (git-ignored). A crash leaves its input in fuzz/artifacts/<target>/ and fails the script. Each run
# prints one line: target, seconds, executions, and the corpus size, for the README's table.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CARGO_FUZZ_VERSION="0.13.2"
TOOLS="$ROOT/.tools/cargo-fuzz"
if ! "$TOOLS/bin/cargo-fuzz" --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION into .tools/cargo-fuzz"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$TOOLS" --quiet
fi
export PATH="$TOOLS/bin:$PATH"
rustup toolchain list | grep -q '^nightly' || { echo "fuzz: the nightly toolchain is needed (rustup toolchain install nightly)" >&2; exit 1; }
TARGETS=(callout host_payload lambda_event jwt scope hr_csv workday_report wws_answer)

if [ "${1:-}" = "--build" ]; then
  # A check that every target builds: unoptimised (`--dev`) is enough, and a third of the time.
  cargo +nightly fuzz build --dev --fuzz-dir fuzz
  echo "fuzz: built ${#TARGETS[@]} targets: ${TARGETS[*]}"
  exit 0
fi
SECONDS_EACH="${1:-600}"
shift || true
[ "$#" -gt 0 ] && TARGETS=("$@")
for t in "${TARGETS[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  log="fuzz/artifacts/$t.log"
  mkdir -p fuzz/artifacts
  cargo +nightly fuzz run --fuzz-dir fuzz "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$SECONDS_EACH" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>"$log" \
    || { tail -40 "$log"; echo "fuzz: $t FAILED (input in fuzz/artifacts/$t/)" >&2; exit 1; }
  execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
  echo "fuzz: $t ran ${SECONDS_EACH}s with no crash: ${execs} executions, corpus $(ls "fuzz/corpus/$t" | wc -l) inputs"
done
