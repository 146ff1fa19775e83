#!/usr/bin/env bash
# Runs (or resumes) a training stage in the background-friendly way the
# shipped models were made: checkpoints and logs under models/train/.
#
#   scripts/train.sh 0          # stage 0: the tokenizer
#
# Re-running the same command resumes from the checkpoint. Stop it with
# Ctrl-C or `kill -TERM`: it saves before it exits.
set -euo pipefail
cd "$(dirname "$0")/.."
stage=${1:?usage: scripts/train.sh STAGE}
data=${MRT_TRAIN_DATA:-../shared/data/train}
out=models/train/stage$stage.gguf
mkdir -p models/train
resume=()
[[ -f $out ]] && resume=(--resume)
case $stage in
  0) args=(--steps 30000 --batch 16 --crop 128 --lr 5e-4 --bits 10 --seed 1) ;;
  *) echo "stage $stage: not implemented yet" >&2; exit 2 ;;
esac
export OMP_WAIT_POLICY=PASSIVE
exec ./build/codec/mrt train --stage "$stage" --data "$data" --out "$out" \
  --log "models/train/stage$stage.jsonl" --save-every 300 "${args[@]}" "${resume[@]}"
