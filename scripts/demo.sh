#!/usr/bin/env bash
# README's first command: install what is missing, build, run the main job.
# Until the codec lands, the main job is the runtime's self-check and
# benchmark (bench/bench_runtime); later it becomes the archive demo on samples/.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"

echo
echo "== runtime self-check and benchmark (bench/README.md explains the columns) =="
OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} ./build/bench/bench_runtime --quick
