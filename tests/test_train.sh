#!/usr/bin/env bash
# `mrt train` in seconds on samples/:
#   - the loss goes down over a short run;
#   - resuming is exact: 12 steps straight give the same checkpoint, byte
#     for byte, as 6 steps + resume + 6 steps (same seed, same threads);
#   - stages 1 and 2 run, resume exactly, and export a working codec model;
#     stage 2's --train-encoder trains the encoder too; --latents grows a
#     model to more latent tokens per window; --dec-pairs grows the decoder
#     by pairs that start as the identity; --target-bpp steers lambda;
#     --mse-weight adds an MSE term to stage 2's loss;
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
common=(--data "$samples" --batch 4 --crop 64 --warmup 5 --threads 2 --quiet)

# the loss decreases (mean L1 of the first 10 logged steps vs the last 10)
"$mrt" train "${common[@]}" --stage 0 --steps 80 --lr 2e-3 --out "$work/a.gguf" --log "$work/a.jsonl" --log-every 1
check "[[ \$? -eq 0 && -s $work/a.gguf ]]" "training run failed"
first=$(head -n 10 "$work/a.jsonl" | sed -E 's/.*"l1": ([0-9.]+).*/\1/' | awk '{s+=$1} END {print s/NR}')
last=$(tail -n 10 "$work/a.jsonl" | sed -E 's/.*"l1": ([0-9.]+).*/\1/' | awk '{s+=$1} END {print s/NR}')
echo "L1 (the reconstruction term): first 10 steps $first, last 10 steps $last"
check "awk -v a=$first -v b=$last 'BEGIN {exit !(b < 0.9 * a)}'" "loss did not decrease ($first -> $last)"
check "[[ \$(wc -l < $work/a.jsonl) -eq 80 ]]" "log does not have one line per step"

# resume equality
"$mrt" train "${common[@]}" --stage 0 --steps 12 --out "$work/straight.gguf"
"$mrt" train "${common[@]}" --stage 0 --steps 12 --stop-after 6 --out "$work/resumed.gguf"
"$mrt" train "${common[@]}" --stage 0 --steps 12 --resume --out "$work/resumed.gguf"
check "cmp -s $work/straight.gguf $work/resumed.gguf" "12 steps != 6 + resume + 6"

# stages 1 and 2 on top of the stage-0 run above, exported as a codec model
# that then encodes and decodes; stage 1 resumes exactly too
"$mrt" train "${common[@]}" --stage 1 --steps 6 --tokenizer "$work/a.gguf" --lambda 0.5 \
  --out "$work/s1.gguf"
check "[[ \$? -eq 0 && -s $work/s1.gguf ]]" "stage 1 failed"
"$mrt" train "${common[@]}" --stage 1 --steps 6 --stop-after 3 --tokenizer "$work/a.gguf" \
  --lambda 0.5 --out "$work/s1r.gguf"
"$mrt" train "${common[@]}" --stage 1 --steps 6 --resume --tokenizer "$work/a.gguf" \
  --lambda 0.5 --out "$work/s1r.gguf"
check "cmp -s $work/s1.gguf $work/s1r.gguf" "stage 1: 6 steps != 3 + resume + 3"
"$mrt" train "${common[@]}" --stage 2 --steps 6 --init "$work/s1.gguf" --lambda 0.5 \
  --out "$work/s2.gguf" --export "$work/model.gguf" --rate-id 3 --log "$work/s2.jsonl" --log-every 1
check "[[ \$? -eq 0 && -s $work/model.gguf ]]" "stage 2 or its export failed"
"$mrt" encode "$samples/coffee.jpg" "$work/c.mrt" --model "$work/model.gguf" --quiet &&
  "$mrt" decode "$work/c.mrt" "$work/c.png" --model "$work/model.gguf" --quiet
check "[[ \$? -eq 0 && -s $work/c.png ]]" "the exported model does not round-trip"
check "\"$mrt\" info $work/c.mrt | grep -q '\"rate_id\": 3'" "exported rate id missing"
# stage 2 with the encoder trained too: it runs, round-trips, and differs
# from the frozen-encoder run (same seed and data: the runs are otherwise
# bit-identical, so equal checkpoints would mean the flag did nothing)
"$mrt" train "${common[@]}" --stage 2 --steps 6 --init "$work/s1.gguf" --lambda 0.5 \
  --out "$work/s2e.gguf" --export "$work/model-e.gguf" --rate-id 3 --train-encoder
check "[[ \$? -eq 0 && -s $work/model-e.gguf ]]" "stage 2 --train-encoder failed"
"$mrt" train "${common[@]}" --stage 2 --steps 6 --init "$work/s1.gguf" --lambda 0.5 \
  --out "$work/s2f.gguf" --rate-id 3
check "cmp -s $work/s2.gguf $work/s2f.gguf" "stage 2 is not deterministic"
check "! cmp -s $work/s2.gguf $work/s2e.gguf" "--train-encoder changed nothing"
"$mrt" encode "$samples/coffee.jpg" "$work/e.mrt" --model "$work/model-e.gguf" --quiet &&
  "$mrt" decode "$work/e.mrt" "$work/e.png" --model "$work/model-e.gguf" --quiet
check "[[ \$? -eq 0 && -s $work/e.png ]]" "the --train-encoder model does not round-trip"
# --threads 2 splits stages 1-2's batch across two workers and averages
# their gradients: the first step's loss and gradient norm match one
# thread's (the workers' rounding noise differs, so not bit for bit; a sum
# instead of a mean would double the norm)
for t in 1 2; do
  "$mrt" train "${common[@]}" --threads $t --stage 2 --steps 1 --init "$work/s1.gguf" \
    --lambda 0.5 --out "$work/t$t.gguf" --log "$work/t$t.jsonl" --log-every 1
done
check "awk -v a=\"\$(sed -E 's/.*\"loss\": ([0-9.]+).*\"grad_norm\": ([0-9.]+).*/\1 \2/' $work/t1.jsonl)\" \
  -v b=\"\$(sed -E 's/.*\"loss\": ([0-9.]+).*\"grad_norm\": ([0-9.]+).*/\1 \2/' $work/t2.jsonl)\" \
  'BEGIN {split(a, x, \" \"); split(b, y, \" \"); exit !(x[1] > 0 && x[2] > 0 &&
     y[1] / x[1] > 0.97 && y[1] / x[1] < 1.03 && y[2] / x[2] > 0.9 && y[2] / x[2] < 1.1)}'" \
  "two workers' first step differs from one thread's (\$(cat $work/t1.jsonl $work/t2.jsonl))"
# --target-bpp steers lambda: far above the target rate it rises every step
# (a fixed lambda stays put), the checkpoint keeps it and a resumed run
# continues from it exactly
"$mrt" train "${common[@]}" --stage 2 --steps 6 --init "$work/s1.gguf" --lambda 0.5 \
  --target-bpp 0.001 --out "$work/rc.gguf" --log "$work/rc.jsonl" --log-every 1
check "[[ \$? -eq 0 ]]" "stage 2 --target-bpp failed"
lambdas=$(sed -E 's/.*"lambda": ([0-9.e+-]+).*/\1/' "$work/rc.jsonl" | paste -sd' ')
check "awk -v l=\"$lambdas\" 'BEGIN {n = split(l, x, \" \"); if (n != 6 || x[1] != 0.5) exit 1;
  for (i = 2; i <= n; i++) if (!(x[i] > x[i - 1])) exit 1}'" \
  "lambda was not steered up from 0.5 towards a rate far below the model's: $lambdas"
check "[[ \$(grep -c '\"lambda\": 0.5}' $work/s2.jsonl) -eq 6 ]]" \
  "a fixed lambda changed over 6 steps: \$(cat $work/s2.jsonl)"
"$mrt" train "${common[@]}" --stage 2 --steps 6 --stop-after 3 --init "$work/s1.gguf" \
  --lambda 0.5 --target-bpp 0.001 --out "$work/rcr.gguf"
"$mrt" train "${common[@]}" --stage 2 --steps 6 --resume --init "$work/s1.gguf" \
  --lambda 0.5 --target-bpp 0.001 --out "$work/rcr.gguf"
check "cmp -s $work/rc.gguf $work/rcr.gguf" "steered lambda: 6 steps != 3 + resume + 3"
# --mse-weight W adds W * MSE (on [0, 1] values) to stage 2's loss: on the
# first step (same weights, same batch) the loss rises by exactly that, and
# the weights then move differently. One thread: the logged PSNR is then
# that of the whole batch's MSE (with two, the mean of two halves' PSNRs)
"$mrt" train "${common[@]}" --stage 2 --steps 2 --init "$work/s1.gguf" --lambda 0.5 \
  --threads 1 --out "$work/nomse.gguf" --log "$work/nomse.jsonl" --log-every 1
"$mrt" train "${common[@]}" --stage 2 --steps 2 --init "$work/s1.gguf" --lambda 0.5 \
  --threads 1 --mse-weight 16 --out "$work/mse.gguf" --log "$work/mse.jsonl" --log-every 1 \
  --export "$work/mse-model.gguf"
check "[[ \$? -eq 0 ]]" "stage 2 --mse-weight failed"
# the exported model names its weight (refinement minimises the same loss);
# one trained without it does not, and both refine
check "grep -q mrt.train.mse_weight $work/mse-model.gguf && ! grep -q mrt.train.mse_weight $work/model.gguf" \
  "the exported model does not record --mse-weight (or one without it does)"
"$mrt" encode "$samples/coffee.jpg" "$work/m.mrt" --model "$work/mse-model.gguf" --refine 2 --quiet &&
  "$mrt" decode "$work/m.mrt" "$work/m.png" --model "$work/mse-model.gguf" --quiet
check "[[ \$? -eq 0 && -s $work/m.png ]]" "a model trained with --mse-weight does not refine and round-trip"
check "awk -v a=\"\$(head -n 1 $work/nomse.jsonl | sed -E 's/.*\"loss\": ([0-9.]+).*\"psnr\": ([0-9.]+).*/\1 \2/')\" \
  -v b=\"\$(head -n 1 $work/mse.jsonl | sed -E 's/.*\"loss\": ([0-9.]+).*\"psnr\": ([0-9.]+).*/\1 \2/')\" \
  'BEGIN {split(a, x, \" \"); split(b, y, \" \"); want = 16 * 10 ^ (-x[2] / 10);
          exit !(x[2] == y[2] && want > 0.001 && y[1] - x[1] > 0.98 * want && y[1] - x[1] < 1.02 * want)}'" \
  "--mse-weight 16 did not add 16 * MSE to the first step's loss"
check "! cmp -s $work/nomse.gguf $work/mse.gguf" "--mse-weight changed no weight"
"$mrt" train "${common[@]}" --stage 1 --steps 1 --tokenizer "$work/a.gguf" --lambda 0.5 \
  --mse-weight 1 --out "$work/x.gguf" 2>"$work/err"
check "[[ \$? -eq 1 ]] && grep -q 'mse-weight' $work/err" "--mse-weight in stage 1 was accepted"
"$mrt" train "${common[@]}" --stage 2 --steps 1 --init "$work/s1.gguf" --lambda 0.5 \
  --mse-weight -1 --out "$work/x.gguf" 2>"$work/err"
check "[[ \$? -eq 1 ]] && grep -q 'mse-weight' $work/err" "a negative --mse-weight was accepted"
"$mrt" train "${common[@]}" --stage 0 --steps 1 --target-bpp 0.01 --out "$work/x.gguf" 2>"$work/err"
check "[[ \$? -eq 1 ]] && grep -q 'target-bpp' $work/err" "--target-bpp in stage 0 was accepted"
"$mrt" train "${common[@]}" --stage 2 --steps 1 --init "$work/s1.gguf" --target-bpp 0.01 \
  --out "$work/x.gguf" 2>"$work/err"
check "[[ \$? -eq 1 ]] && grep -q 'target-bpp' $work/err" "--target-bpp without a --lambda was accepted"
"$mrt" train "${common[@]}" --stage 2 --steps 1 --init "$work/s1.gguf" --lambda 0.5 \
  --target-bpp -1 --out "$work/x.gguf" 2>"$work/err"
check "[[ \$? -eq 1 ]] && grep -q 'target-bpp' $work/err" "a negative --target-bpp was accepted"
# fine-tuning a model file (the user feature): stage 2 from the exported model
"$mrt" train "${common[@]}" --stage 2 --steps 3 --init "$work/model.gguf" --lambda 0.5 \
  --out "$work/ft.gguf" --export "$work/ft-model.gguf"
check "[[ \$? -eq 0 && -s $work/ft-model.gguf ]]" "fine-tuning from a model file failed"
# a rate point given more latent tokens per window (--latents): stage 2
# grows a 2-token model to 3 tokens, resumes exactly, round-trips, and the
# grown checkpoint cannot be resumed as another size or shrunk back
"$mrt" train "${common[@]}" --stage 2 --steps 6 --init "$work/model.gguf" --latents 3 \
  --lambda 0.5 --out "$work/g.gguf" --export "$work/model-g.gguf" --train-encoder
check "[[ \$? -eq 0 && -s $work/model-g.gguf ]]" "stage 2 --latents 3 from a 2-token model failed"
"$mrt" train "${common[@]}" --stage 2 --steps 6 --stop-after 3 --init "$work/model.gguf" \
  --latents 3 --lambda 0.5 --out "$work/gr.gguf" --train-encoder
"$mrt" train "${common[@]}" --stage 2 --steps 6 --resume --init "$work/model.gguf" \
  --lambda 0.5 --out "$work/gr.gguf" --train-encoder
check "cmp -s $work/g.gguf $work/gr.gguf" \
  "grown stage 2: 6 steps != 3 + resume (its size from the checkpoint) + 3"
# fine-tuning the grown model takes its size from the model file
"$mrt" train "${common[@]}" --stage 2 --steps 1 --init "$work/model-g.gguf" --lambda 0.5 \
  --out "$work/gft.gguf" --export "$work/gft-model.gguf"
check "[[ \$? -eq 0 && -s $work/gft-model.gguf ]]" "fine-tuning a 3-token model failed"
"$mrt" encode "$samples/coffee.jpg" "$work/g.mrt" --model "$work/model-g.gguf" --quiet &&
  "$mrt" decode "$work/g.mrt" "$work/g.png" --model "$work/model-g.gguf" --quiet
check "[[ \$? -eq 0 && -s $work/g.png ]]" "the grown model does not round-trip"
check "(( \$(stat -c %s $work/g.mrt) > \$(stat -c %s $work/e.mrt) ))" \
  "the grown model's bitstream is not larger (it codes 3 tokens per window, not 2)"
"$mrt" train "${common[@]}" --stage 2 --steps 6 --resume --init "$work/model.gguf" \
  --latents 4 --lambda 0.5 --out "$work/gr.gguf" 2>"$work/err"
check "[[ \$? -eq 1 ]] && grep -q '3 latent tokens' $work/err" \
  "resuming a 3-token checkpoint as 4 tokens was not refused"
"$mrt" train "${common[@]}" --stage 2 --steps 1 --init "$work/model-g.gguf" --latents 2 \
  --lambda 0.5 --out "$work/shrink.gguf" 2>"$work/err"
check "[[ \$? -eq 1 ]] && grep -q 'grow, not shrink' $work/err" "shrinking a model was not refused"
"$mrt" train "${common[@]}" --stage 2 --steps 1 --init "$work/model.gguf" --latents 65 \
  --out "$work/x.gguf" 2>"$work/err"
check "[[ \$? -eq 1 ]] && grep -q 'latents' $work/err" "--latents 65 was accepted"
"$mrt" train "${common[@]}" --stage 0 --steps 1 --latents 4 --out "$work/x.gguf" 2>"$work/err"
check "[[ \$? -eq 1 ]] && grep -q 'stages 1 and 2' $work/err" "--latents in stage 0 was accepted"
# a deeper decoder (--dec-pairs): the new pair starts as the identity, so a
# model grown from the exported one and saved before any learning (lr 0)
# decodes exactly the pixels of the same model not grown; a checkpoint
# grows on resume (keeping its step and Adam state), resumes again at its
# new size, and is not shrunk
"$mrt" train "${common[@]}" --stage 2 --steps 1 --init "$work/model.gguf" --lr 0 \
  --out "$work/d2.gguf" --export "$work/model-d2.gguf"
"$mrt" train "${common[@]}" --stage 2 --steps 1 --init "$work/model.gguf" --lr 0 --dec-pairs 3 \
  --out "$work/d3.gguf" --export "$work/model-d3.gguf"
check "[[ \$? -eq 0 && -s $work/model-d3.gguf ]]" "stage 2 --dec-pairs 3 from a 2-pair model failed"
for d in d2 d3; do
  "$mrt" encode "$samples/coffee.jpg" "$work/$d.mrt" --model "$work/model-$d.gguf" --quiet &&
    "$mrt" decode "$work/$d.mrt" "$work/$d.png" --model "$work/model-$d.gguf" --quiet
done
check "[[ -s $work/d3.png ]] && cmp -s $work/d2.png $work/d3.png" \
  "a decoder grown by a pair does not decode what it decoded before growing"
check "(( \$(stat -c %s $work/model-d3.gguf) > \$(stat -c %s $work/model-d2.gguf) ))" \
  "the grown model file does not hold the new pair"
"$mrt" train "${common[@]}" --stage 2 --steps 4 --resume --dec-pairs 3 --lambda 0.5 \
  --out "$work/d2.gguf" --export "$work/model-d2r.gguf" 2>"$work/err"
check "[[ \$? -eq 0 && -s $work/model-d2r.gguf ]]" "resuming a 2-pair checkpoint with --dec-pairs 3 failed"
"$mrt" train "${common[@]}" --stage 2 --steps 5 --resume --lambda 0.5 --out "$work/d2.gguf" \
  --export "$work/model-d2r.gguf"
check "[[ \$? -eq 0 ]]" "the grown checkpoint does not resume at its own size"
"$mrt" train "${common[@]}" --stage 2 --steps 6 --resume --dec-pairs 2 --lambda 0.5 \
  --out "$work/d2.gguf" 2>"$work/err"
check "[[ \$? -eq 1 ]] && grep -q 'grow, not shrink' $work/err" "shrinking the decoder was not refused"
for n in 9 4294967299; do # the second would wrap to 3 in an int
  "$mrt" train "${common[@]}" --stage 2 --steps 1 --init "$work/model.gguf" --dec-pairs $n \
    --out "$work/x.gguf" 2>"$work/err"
  check "[[ \$? -eq 1 ]] && grep -q 'dec_pairs' $work/err" "--dec-pairs $n was accepted"
done
"$mrt" train "${common[@]}" --stage 0 --steps 1 --dec-pairs 3 --out "$work/x.gguf" 2>"$work/err"
check "[[ \$? -eq 1 ]] && grep -q 'stages 1 and 2' $work/err" "--dec-pairs in stage 0 was accepted"
# --lr-mult PREFIX=X: a multiplier of 1 changes nothing (the update split
# into ranges is the same arithmetic), another one changes the run
"$mrt" train "${common[@]}" --stage 2 --steps 3 --init "$work/model.gguf" --dec-pairs 3 \
  --out "$work/m1.gguf"
"$mrt" train "${common[@]}" --stage 2 --steps 3 --init "$work/model.gguf" --dec-pairs 3 \
  --lr-mult dec.2.=1 --out "$work/m1x.gguf"
check "cmp -s $work/m1.gguf $work/m1x.gguf" "--lr-mult dec.2.=1 changed the run"
"$mrt" train "${common[@]}" --stage 2 --steps 3 --init "$work/model.gguf" --dec-pairs 3 \
  --lr-mult dec.2.=20 --out "$work/m20.gguf"
check "[[ \$? -eq 0 && -s $work/m20.gguf ]] && ! cmp -s $work/m1.gguf $work/m20.gguf" \
  "--lr-mult dec.2.=20 failed or changed nothing"
for bad in dec.2. =5 dec.2.=0 dec.2.=x dec.2.=2000; do
  "$mrt" train "${common[@]}" --stage 2 --steps 1 --init "$work/model.gguf" --lr-mult "$bad" \
    --out "$work/x.gguf" 2>"$work/err"
  check "[[ \$? -ne 0 ]] && grep -q 'lr-mult' $work/err" "--lr-mult $bad was accepted"
done
"$mrt" train "${common[@]}" --stage 2 --steps 1 --init "$work/model.gguf" --lr-mult nosuch.=2 \
  --out "$work/x.gguf" 2>"$work/err"
check "[[ \$? -eq 1 ]] && grep -q \"no trained tensor's name starts with 'nosuch.'\" $work/err" \
  "--lr-mult naming no tensor was accepted"

"$mrt" train "${common[@]}" --stage 1 --steps 6 --out "$work/x.gguf" 2>"$work/err"
check "[[ \$? -eq 1 ]] && grep -q 'tokenizer' $work/err" "stage 1 without a tokenizer was accepted"

# refusals
"$mrt" train "${common[@]}" --stage 0 --steps 12 --resume --seed 99 --out "$work/resumed.gguf" 2>"$work/err"
check "[[ \$? -eq 1 ]] && grep -q 'seed' $work/err" "resume with another seed was not refused"
"$mrt" train --stage 0 --data "$work/nothing" --out "$work/x.gguf" 2>"$work/err"
check "[[ \$? -eq 1 ]] && grep -q 'nothing' $work/err" "missing data folder was not refused"
"$mrt" train --stage 0 --data "$samples" --out "$work/x.gguf" --crop 30 2>"$work/err"
check "[[ \$? -eq 1 ]]" "a crop that is not a multiple of 8 was accepted"
"$mrt" train --stage 0 --data "$samples" --out "$work/x.gguf" --bogus 1 2>"$work/err"
check "[[ \$? -eq 2 ]]" "unknown option not refused with usage"

echo "test_train: $pass passed, $fail failed"
exit $((fail > 0))
