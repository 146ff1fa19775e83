#!/usr/bin/env bash
# The whole test suite (README's second command; .ci/run runs exactly this):
#   1. the normal build (-O2, warnings are errors) and its ctest run;
#   2. the same tests built with -fsanitize=address,undefined;
#   3. each libFuzzer harness in fuzz/ for $MRT_FUZZ_SECONDS (default 20) s.
# Exits non-zero when any build or test fails.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)

# A second, unoptimised build -- with clang when it is installed -- whose
# decoder must reproduce the main build's symbols exactly (DESIGN.md §5;
# tests/determinism.sh).
if command -v clang >/dev/null; then cross_cc=clang; else cross_cc=gcc; fi
echo "== cross build ($cross_cc -O0) for the determinism test =="
CC=$cross_cc cmake -S . -B build-cross -DCMAKE_BUILD_TYPE=Debug -DMRT_WERROR=ON >/dev/null
cmake --build build-cross -j "$jobs" --target tool_codec

echo "== build (Release, -Werror) =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMRT_WERROR=ON \
  -DMRT_CROSS_TOOLS="$PWD/build-cross/tests/tool_codec" >/dev/null
cmake --build build -j "$jobs"
echo "== tests =="
ctest --test-dir build --output-on-failure -j 1

echo "== build (AddressSanitizer + UndefinedBehaviorSanitizer) =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMRT_WERROR=ON -DMRT_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs"
echo "== tests under ASan/UBSan =="
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j 1

# libFuzzer harnesses over the parsers (fuzz/README.md): a short bounded run
# of each; clang is one of install-deps.sh's packages.
echo "== fuzz build (clang, libFuzzer + ASan/UBSan) =="
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMRT_WERROR=ON -DMRT_FUZZ=ON \
  -DMRT_FUZZ_SECONDS="${MRT_FUZZ_SECONDS:-20}" >/dev/null
cmake --build build-fuzz -j "$jobs" --target mrt_fuzzers
echo "== fuzzing (${MRT_FUZZ_SECONDS:-20} s per harness) =="
ctest --test-dir build-fuzz -L fuzz --output-on-failure -j 1
