#!/usr/bin/env bash
# Runs caskade's cargo-fuzz targets for $FUZZ_SECONDS seconds each (default
# 60), then merges the inputs that add coverage into fuzz/corpus/<target>/.
# Not part of .ci/run: CI replays the saved corpus (tests/fuzz_corpus.rs).
#
#   fuzz/run.sh                              every target, 60 s each
#   FUZZ_SECONDS=3600 fuzz/run.sh            a soak run: an hour each
#   FUZZ_TARGETS="hint catalog" fuzz/run.sh  some targets only
#   FUZZ_SANITIZER=none fuzz/run.sh          faster, without AddressSanitizer
#   FUZZ_ARGS="-workers=4 -jobs=4" ...       more libFuzzer flags
#
# A crash stops that target and leaves its input in fuzz/artifacts/<target>/,
# which `cargo test --test fuzz_corpus` then replays (and fails on) until the
# bug is fixed and the input is moved to fuzz/corpus/<target>/regress-<what>.
# Exits non-zero if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-record hint manifest catalog name}
sanitizer=${FUZZ_SANITIZER:-address}
read -r -a extra <<<"${FUZZ_ARGS:-}"
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

# -a: debug assertions and overflow checks, as in `cargo test`.
fuzz() { cargo +nightly fuzz run -a -s "$sanitizer" "$@"; }

crashed=()
for t in $targets; do
  scratch=fuzz/new-corpus/$t
  rm -rf "$scratch"
  mkdir -p "$scratch"
  echo "== fuzz $t for ${seconds}s" >&2
  # New inputs go to the scratch directory; the saved corpus is read only.
  if ! fuzz "$t" "$scratch" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -print_final_stats=1 "${extra[@]}"; then
    crashed+=("$t")
  fi
  echo "== merge new inputs of $t into fuzz/corpus/$t" >&2
  fuzz "$t" "fuzz/corpus/$t" "$scratch" -- -merge=1
  rm -rf "$scratch"
done

if ((${#crashed[@]})); then
  echo "== crashed: ${crashed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "== no crash in: $targets" >&2
