#!/usr/bin/env bash
# Minimizes what the fuzzers found into the committed corpora, fuzz/corpus/<what>/
# (replayed by every fuzz run under ctest: fuzz/CMakeLists.txt):
#
#   fuzz/merge-corpus.sh [BUILD_FUZZ_DIR] [HARNESS...]
#
# For each harness (default: all), libFuzzer's -merge=1 keeps the smallest set
# of inputs from the committed corpus, the build's work/<what> and the seeds
# that covers all they cover together. Run after long fuzzing runs (see
# fuzz/README.md), then commit fuzz/corpus/.
set -euo pipefail
src=$(cd "$(dirname "$0")" && pwd)
build=${1:-$src/../build-fuzz}
shift || true
harnesses=("$@")
[[ ${#harnesses[@]} -gt 0 ]] || harnesses=(decode encode image gguf sql archive)
export MRT_THREADS=1 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
for what in "${harnesses[@]}"; do
  bin=$build/fuzz/fuzz_$what
  [[ -x $bin ]] || { echo "merge-corpus: $bin is not built" >&2; exit 1; }
  new=$(mktemp -d "${TMPDIR:-/tmp}/mrt-corpus-$what.XXXXXX")
  mkdir -p "$src/corpus/$what"
  "$bin" -merge=1 -rss_limit_mb=2048 -timeout=10 -close_fd_mask=2 "$new" \
    "$src/corpus/$what" "$build/fuzz/work/$what" "$build/fuzz/seeds/$what" 2>&1 |
    grep -E "MERGE-OUTER: [0-9]+ new files" || true
  rm -rf "$src/corpus/$what"
  mv "$new" "$src/corpus/$what"
  chmod 755 "$src/corpus/$what"
  echo "merge-corpus: $what: $(ls "$src/corpus/$what" | wc -l) inputs, $(du -sk "$src/corpus/$what" | cut -f1) KiB"
done
