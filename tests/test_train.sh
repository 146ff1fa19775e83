#!/usr/bin/env bash
# `mrt train` in seconds on samples/:
#   - the loss goes down over a short run;
#   - resuming is exact: 12 steps straight give the same checkpoint, byte
#     for byte, as 6 steps + resume + 6 steps (same seed, same threads);
#   - bad options and a mismatched resume are refused.
#
#   test_train.sh MRT_BINARY SAMPLES_DIR
set -uo pipefail
mrt=$1
samples=$2
work=$(mktemp -d /tmp/mrt-train-XXXXXX)
trap 'rm -rf "$work"' EXIT
pass=0
fail=0
check() { if eval "$1"; then pass=$((pass + 1)); else echo "FAIL: $2"; fail=$((fail + 1)); fi; }
common=(--stage 0 --data "$samples" --batch 4 --crop 64 --warmup 5 --threads 2 --quiet)

# the loss decreases (mean L1 of the first 10 logged steps vs the last 10)
"$mrt" train "${common[@]}" --steps 80 --lr 2e-3 --out "$work/a.gguf" --log "$work/a.jsonl" --log-every 1
check "[[ \$? -eq 0 && -s $work/a.gguf ]]" "training run failed"
first=$(head -n 10 "$work/a.jsonl" | sed -E 's/.*"l1": ([0-9.]+).*/\1/' | awk '{s+=$1} END {print s/NR}')
last=$(tail -n 10 "$work/a.jsonl" | sed -E 's/.*"l1": ([0-9.]+).*/\1/' | awk '{s+=$1} END {print s/NR}')
echo "L1 (the reconstruction term): first 10 steps $first, last 10 steps $last"
check "awk -v a=$first -v b=$last 'BEGIN {exit !(b < 0.9 * a)}'" "loss did not decrease ($first -> $last)"
check "[[ \$(wc -l < $work/a.jsonl) -eq 80 ]]" "log does not have one line per step"

# resume equality
"$mrt" train "${common[@]}" --steps 12 --out "$work/straight.gguf"
"$mrt" train "${common[@]}" --steps 12 --stop-after 6 --out "$work/resumed.gguf"
"$mrt" train "${common[@]}" --steps 12 --resume --out "$work/resumed.gguf"
check "cmp -s $work/straight.gguf $work/resumed.gguf" "12 steps != 6 + resume + 6"

# refusals
"$mrt" train "${common[@]}" --steps 12 --resume --seed 99 --out "$work/resumed.gguf" 2>"$work/err"
check "[[ \$? -eq 1 ]] && grep -q 'seed' $work/err" "resume with another seed was not refused"
"$mrt" train --stage 0 --data "$work/nothing" --out "$work/x.gguf" 2>"$work/err"
check "[[ \$? -eq 1 ]] && grep -q 'nothing' $work/err" "missing data folder was not refused"
"$mrt" train --stage 0 --data "$samples" --out "$work/x.gguf" --crop 30 2>"$work/err"
check "[[ \$? -eq 1 ]]" "a crop that is not a multiple of 8 was accepted"
"$mrt" train --stage 0 --data "$samples" --out "$work/x.gguf" --bogus 1 2>"$work/err"
check "[[ \$? -eq 2 ]]" "unknown option not refused with usage"

echo "test_train: $pass passed, $fail failed"
exit $((fail > 0))
