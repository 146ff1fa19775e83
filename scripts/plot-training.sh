#!/usr/bin/env bash
# Draws the training curves of models/README.md from the JSONL logs that
# `mrt train --log` writes (one flat JSON object per logged step):
#
#   scripts/plot-training.sh [LOG_DIR] [OUT.png]
#
# defaults: models/train and models/training.png. Each panel shows a
# running mean over 20 log lines (200 steps) because single batches are
# noisy. Needs awk and gnuplot (scripts/install-deps.sh installs gnuplot-nox).
set -euo pipefail
cd "$(dirname "$0")/.."
logs=${1:-models/train}
out=${2:-models/training.png}
command -v gnuplot >/dev/null || { echo "plot-training.sh: gnuplot is not installed" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# field NAME of a flat JSON line, as a number
extract() { # LOG FIELD... -> "step field..." rows, running mean over 20 rows
  local log=$1; shift
  awk -v fields="$*" '
    function num(line, key,   m) {
      if (match(line, "\"" key "\": *-?[0-9.eE+-]+")) {
        m = substr(line, RSTART, RLENGTH); sub(/.*: */, "", m); return m + 0
      }
      return "nan"
    }
    BEGIN { n = split(fields, f, " "); W = 20 }
    {
      step = num($0, "step"); out = step
      for (i = 1; i <= n; i++) {
        v = num($0, f[i]); k = NR % W
        sum[i] += v - ring[i, k]; ring[i, k] = v
        out = out " " sum[i] / (NR < W ? NR : W)
      }
      print out
    }' "$log"
}

plots=()
if [[ -f $logs/stage0.jsonl ]]; then
  extract "$logs/stage0.jsonl" psnr msssim > "$tmp/s0"
  plots+=("set title 'stage 0: tokenizer (training crops)'; set key bottom right; set ylabel 'PSNR dB'; set y2label 'MS-SSIM'; set y2tics; plot '$tmp/s0' u 1:2 w l t 'PSNR', '' u 1:3 axes x1y2 w l t 'MS-SSIM'; unset y2tics; unset y2label")
fi
# panel STAGE TITLE KEY YLABEL FIELD1 LABEL1 Y2LABEL FIELD2 LABEL2: one curve
# pair (FIELD1 solid on the left axis, FIELD2 dashed on the right) for every
# models/train/stageSTAGE*.jsonl
panel() {
  local stage=$1 title=$2 key=$3 ylabel=$4 f1=$5 l1=$6 y2label=$7 f2=$8 l2=$9 curves=() f name
  for f in "$logs"/stage"$stage"*.jsonl; do
    [[ -f $f ]] || continue
    name=$(basename "$f" .jsonl)
    extract "$f" "$f1" "$f2" > "$tmp/$name"
    curves+=("'$tmp/$name' u 1:2 w l t '$name $l1', '$tmp/$name' u 1:3 axes x1y2 w l dt 2 t '$name $l2'")
  done
  [[ ${#curves[@]} -gt 0 ]] || return 0
  local joined
  joined=$(IFS=,; echo "${curves[*]}")
  plots+=("set title '$title'; set key $key; set ylabel '$ylabel'; set y2label '$y2label'; set y2tics; plot $joined; unset y2tics; unset y2label")
}
panel 1 'stage 1: feature MSE (solid) and bpp estimate (dashed)' 'top right' MSE l1 MSE bpp entropy bpp
panel 2 'stage 2: PSNR (solid) and MS-SSIM (dashed), training crops' 'bottom right' 'PSNR dB' psnr PSNR MS-SSIM msssim MS-SSIM
[[ ${#plots[@]} -gt 0 ]] || { echo "plot-training.sh: no stage*.jsonl in $logs" >&2; exit 1; }
{
  echo "set terminal pngcairo size $((600 * ${#plots[@]})),480 font ',10'"
  echo "set output '$out'"
  echo "set multiplot layout 1,${#plots[@]}"
  echo "set grid; set key top right; set xlabel 'step'"
  printf '%s\n' "${plots[@]}"
  echo "unset multiplot"
} > "$tmp/plot.gp"
gnuplot "$tmp/plot.gp"
echo "plot-training.sh: wrote $out"
