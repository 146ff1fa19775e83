#!/usr/bin/env bash
# Runs (or resumes) one step of the training that made the shipped models
# (models/README.md), with checkpoints and logs under models/train/.
#
#   scripts/train.sh 0           # stage 0: the tokenizer          -> models/train/stage0.gguf
#   scripts/train.sh 1           # stage 1 trunk, middle rate      -> models/train/stage1.gguf
#   scripts/train.sh 1 RATE      # stage 1 branch for one rate     -> models/train/stage1-RATE.gguf
#   scripts/train.sh 2 RATE      # stage 2, exports the rate point -> models/mrt-RATE.gguf
#                                #   (the file it replaces to models/retired/; and fits
#                                #   its thumbnail head: mrt-RATE.thumbs.gguf)
#
# RATE is 0.005, 0.01, 0.02 or 0.05 (bits per pixel on Kodak the rate point
# aims at). The shipped 0.005 and 0.01 points are the 0.02 weights at a
# working scale (models/README.md, "Rate points from one model"): stage 2
# for 0.02 writes them again from its export; stage 2 for 0.005 or 0.01
# exports to models/train/mrt-RATE-trained.gguf, not over a shipped file.
# A branch starts as a copy of the finished trunk and continues stage 1
# with its own lambda (the branches moving furthest from the trunk's rate
# get a higher peak learning rate: the cosine is already at 0.18 of it when
# they start); stage 2 starts from the branch.
#
# Re-running the same command resumes from its checkpoint. Stop it with
# Ctrl-C or `kill -TERM`: it saves before it exits. $MRT_TRAIN_BIN picks the
# binary (default build/codec/mrt): copy it elsewhere first if you rebuild
# while training runs.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,25p' "$0" >&2; exit 2; }
stage=${1:-}
rate=${2:-}
data=${MRT_TRAIN_DATA:-../shared/data/train}
bin=${MRT_TRAIN_BIN:-./build/codec/mrt}
mkdir -p models/train

# lambda per rate point (stage 1 branch and stage 2) and the rate id the
# exported model carries (it goes into every bitstream)
case $rate in
  "") ;;
  0.005) lambda=1.5 rate_id=0 branch_lr=5e-4 branch_steps=4500 stage2_lambda=2.5 stage2_steps=7500 ;;
  0.01) lambda=0.05 rate_id=1 branch_lr=1.5e-3 branch_steps=8000 stage2_lambda=0.9 stage2_steps=6500 ;;
  0.02) lambda=0.005 rate_id=2 branch_lr=1.5e-3 branch_steps=8000 stage2_lambda=3 stage2_steps=103000 ;;
  0.05) rate_id=3 stage2_lambda=1.0 stage2_steps=24000 ;;
  *) echo "train.sh: unknown rate point '$rate' (0.005, 0.01, 0.02 or 0.05)" >&2; exit 2 ;;
esac

case $stage:$rate in
  0:)
    name=stage0
    # The stage-0 run that ships was scheduled for 30000 steps and, at step
    # 19444 with the metrics flat, resumed with --steps 22000: a shorter
    # cosine tail (models/README.md).
    args=(--steps 22000 --batch 16 --crop 128 --lr 5e-4 --bits 10 --seed 1) ;;
  1:)
    # The trunk was stopped at step 3317 of this 6000-step cosine (its feature
    # error flat at 0.44) and branched from there; re-running it would carry
    # it on past what the shipped branches saw.
    name=stage1
    args=(--tokenizer models/train/stage0.gguf --lambda 1 --lambda-ramp 1000
          --steps 6000 --batch 16 --crop 128 --lr 5e-4 --seed 1) ;;
  1:0.05)
    echo "train.sh: the 0.05 point has no stage 1 (its stage 2 starts from the 0.02 point's)" >&2
    exit 2 ;;
  1:*)
    name=stage1-$rate
    if [[ ! -f models/train/$name.gguf ]]; then
      [[ -f models/train/stage1.gguf ]] || { echo "train.sh: run stage 1 (the trunk) first" >&2; exit 1; }
      cp models/train/stage1.gguf "models/train/$name.gguf"
    fi
    args=(--tokenizer models/train/stage0.gguf --lambda "$lambda"
          --steps "$branch_steps" --batch 16 --crop 128 --lr "$branch_lr" --seed 1) ;;
  2:0.02)
    # The 0.02 point has 4 latent tokens per window: its stage 2 started
    # from the 2-token stage-2 checkpoint at step 3600 (stage2-0.02-L2.gguf,
    # itself `--init stage1-0.02.gguf` with lambda 0.12), grown by --latents
    # (models/README.md, "More latent tokens for 0.02"). From step 38000
    # it ran at lambda 3 (the rate had drifted over 0.025 bpp at lambda
    # 1.2): with --lr 1e-4 --steps 80000 to 39955, then --steps 60000, from
    # 42227 with lambda steered to hold the training crops' rate
    # (--target-bpp; about 0.0226 bpp on Kodak), and from 42740 with
    # --lr 3.6e-4 --steps 54000 (the same 4.6e-5 there, a cosine tail that
    # fits the session). From 54000: --mse-weight 16 (an MSE term in the
    # loss, for PSNR) with --lr 6.4e-4 --steps 70000 (8.9e-5 at 54000).
    # From 70000: --mse-weight 48 with --lr 8e-4 --steps 88000 (9e-5 at
    # 70000), stopped by SIGTERM at 86245 (1.1e-5) to fit the session.
    # From 86245: --mse-weight 32 with --lr 1.725e-3 --steps 103000
    # (1.2e-4 at 86245), stopped by SIGTERM at 98482 (1.8e-5): re-running
    # this command continues that last cosine to its end at 103000.
    name=stage2-$rate
    args=(--init "models/train/stage2-0.02-L2.gguf" --latents 4 --lambda "$stage2_lambda"
          --target-bpp 0.0248 --mse-weight 32 --rate-id "$rate_id" --train-encoder
          --export "models/mrt-$rate.gguf" --steps "$stage2_steps" --warmup 200 --batch 16 --crop 128 --lr 1.725e-3
          --seed 1) ;;
  2:0.05)
    # The 0.05 point has no stage 1 of its own: it started from the 0.02
    # point's stage-2 checkpoint (4 tokens per window, --mse-weight 32) with
    # lambda steered to hold the crops' rate at 0.062 bpp (the 0.02 point
    # holds 0.0248 for 0.02 on photos; x2.5), and ran its 24000 steps
    # (models/README.md, "The 0.05 rate point").
    name=stage2-$rate
    args=(--init "models/train/stage2-0.02.gguf" --lambda "$stage2_lambda" --target-bpp 0.062
          --mse-weight 32 --rate-id "$rate_id" --train-encoder
          --export "models/mrt-$rate.gguf" --steps "$stage2_steps" --warmup 200 --batch 16 --crop 128 --lr 3e-4
          --seed 1) ;;
  2:?*)
    name=stage2-$rate
    args=(--init "models/train/stage1-$rate.gguf" --lambda "$stage2_lambda" --rate-id "$rate_id"
          --train-encoder
          --export "models/train/mrt-$rate-trained.gguf" --steps "$stage2_steps" --warmup 200 --batch 16 --crop 128 --lr 2e-4
          --seed 1) ;;
  *) usage ;;
esac

out=models/train/$name.gguf
resume=()
[[ -f $out ]] && resume=(--resume)
export OMP_WAIT_POLICY=PASSIVE
if [[ $stage != 2 ]]; then
  exec "$bin" train --stage "$stage" --data "$data" --out "$out" \
    --log "models/train/$name.jsonl" --save-every 300 "${args[@]}" "${resume[@]}"
fi
# A shipped rate point that is replaced keeps decoding the streams it made
# from models/retired/ (models/README.md, "Retired weights"): the export
# overwrites models/mrt-RATE.gguf at every save, so a copy goes there first,
# and is dropped again if the run ends with the same file.
retired_copy() { # FILE: models/retired/NAME-FINGERPRINT.gguf, with its thumbnail head
  local base=${1##*/} fp
  fp=$(sha256sum "$1" | cut -c1-16)
  mkdir -p models/retired
  echo "models/retired/${base%.gguf}-$fp.gguf"
}
shipped=models/mrt-$rate.gguf
kept=
if [[ $rate == 0.02 || $rate == 0.05 ]] && [[ -f $shipped ]]; then
  kept=$(retired_copy "$shipped")
  cp -p "$shipped" "$kept"
  thumbs=${shipped%.gguf}.thumbs.gguf
  [[ -f $thumbs ]] && cp -p "$thumbs" "${kept%.gguf}.thumbs.gguf"
fi
"$bin" train --stage "$stage" --data "$data" --out "$out" \
  --log "models/train/$name.jsonl" --save-every 300 "${args[@]}" "${resume[@]}"
if [[ -n $kept ]] && cmp -s "$kept" "$shipped"; then
  rm -f "$kept" "${kept%.gguf}.thumbs.gguf" # not replaced after all
  exit 0
fi
case $rate in
  0.005 | 0.01) exit 0 ;; # not a shipped file: no thumbnail head
  0.02)
    # the rate points made of the 0.02 weights, written again from the new
    # ones; the files they replace retire too
    for point in 0.005:0:1/2 0.01:1:0.7071; do
      IFS=: read -r point_name point_id point_scale <<<"$point"
      derived=models/mrt-$point_name.gguf
      "$bin" derive-rate-point "$shipped" "models/train/$point_name.derived.gguf" \
        --scale "$point_scale" --rate-id "$point_id"
      if [[ -f $derived ]] && ! cmp -s "$derived" "models/train/$point_name.derived.gguf"; then
        mv "$derived" "$(retired_copy "$derived")"
      fi
      mv "models/train/$point_name.derived.gguf" "$derived"
    done ;;
esac
# the exported rate point's thumbnail head (docs/DESIGN.md §3.7): the old
# one names the model file as it was, and would no longer be used
"$bin" fit-thumbnails --model "models/mrt-$rate.gguf" --data "$data"
