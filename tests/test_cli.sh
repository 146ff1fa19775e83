#!/usr/bin/env bash
# The `mrt` command as a user runs it: every sample round-trips with a
# seeded random model, the shipped default model is found when none is
# named, `info` prints JSON, and every error exits non-zero
# with a one-line reason (1 for errors, 2 for usage).
#
#   test_cli.sh MRT_BINARY SAMPLES_DIR
set -uo pipefail
mrt=$1
samples=$2
work=$(mktemp -d /tmp/mrt-cli-XXXXXX)
trap 'rm -rf "$work"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

# expect CODE PATTERN CMD...: exit status CODE and stderr matching PATTERN (one line)
expect() {
  local code=$1 pattern=$2
  shift 2
  "$@" >"$work/out" 2>"$work/err"
  local got=$?
  if [[ $got -ne $code ]]; then bad "$* exited $got, want $code: $(cat "$work/err")"; return; fi
  if [[ -n $pattern ]] && ! grep -Eq "$pattern" "$work/err"; then
    bad "$*: stderr '$(cat "$work/err")' does not match '$pattern'"; return
  fi
  if [[ $code -eq 1 && $(wc -l <"$work/err") -ne 1 ]]; then
    bad "$*: error is not one line: $(cat "$work/err")"; return
  fi
  ok
}

unset MRT_MODEL
model=$work/model.gguf
expect 0 "random XS model" "$mrt" init-model "$model" --seed 3
for img in "$samples"/*.png "$samples"/*.jpg; do
  name=$(basename "$img")
  expect 0 "bpp" "$mrt" encode "$img" "$work/$name.mrt" --model "$model" --threads 2
  expect 0 "" "$mrt" decode "$work/$name.mrt" "$work/$name.png" --model "$model" --quiet
  [[ -s $work/err ]] && bad "--quiet printed: $(cat "$work/err")" || ok
  expect 0 "" "$mrt" info "$work/$name.mrt"
  if grep -Eq '^\{"version": 1, "width": [0-9]+, "height": [0-9]+, "bytes": [0-9]+, "bpp": [0-9.]+, "rate_id": [0-9]+, "model": "[0-9a-f]{16}", "streams": \[[0-9]+, [0-9]+\]\}$' "$work/out"; then ok; else bad "info JSON: $(cat "$work/out")"; fi
  # the decoded PNG has the size the header states, which is the input's
  w=$(sed -E 's/.*"width": ([0-9]+).*/\1/' "$work/out")
  h=$(sed -E 's/.*"height": ([0-9]+).*/\1/' "$work/out")
  dims=$(od -An -tu1 -j16 -N8 "$work/$name.png" | awk '{print $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8}')
  [[ $dims == "$w $h" ]] && ok || bad "$name: PNG is $dims, header says $w $h"
done

# `mrt eval`: CompressAI-style JSON whose bpp is the real bitstream's (the
# encode above of the same image with the same model), checked with
# SQLite's JSON functions. A file name with a quote stays valid JSON.
mkdir -p "$work/evalset"
cp "$samples/coffee.jpg" "$work/evalset/co\"ffee.jpg"
cp "$samples/camera.png" "$work/evalset/camera.png"
expect 0 "" "$mrt" eval "$work/evalset" --model "$model" --threads 2
cp "$work/out" "$work/eval.json"
coffee_bpp=$(awk "BEGIN {printf \"%.6f\", $(stat -c %s "$work/coffee.jpg.mrt") * 8 / (600 * 400)}")
schema=$(sqlite3 :memory: "with j(v) as (select readfile('$work/eval.json'))
  select json_valid(v), json_extract(v, '\$.name'), json_array_length(v, '\$.images'),
    (select count(*) from json_each(v, '\$.images') e where
       json_type(e.value, '\$.name') = 'text' and json_type(e.value, '\$.bpp') = 'real' and
       json_type(e.value, '\$.psnr-rgb') = 'real' and json_type(e.value, '\$.ms-ssim-rgb') = 'real' and
       json_type(e.value, '\$.encoding_time') = 'real' and json_type(e.value, '\$.decoding_time') = 'real'),
    (select printf('%.6f', json_extract(e.value, '\$.bpp')) from json_each(v, '\$.images') e
       where json_extract(e.value, '\$.name') = 'co\"ffee.jpg'),
    json_type(v, '\$.results.bpp') = 'real' and json_type(v, '\$.results.ms-ssim-rgb') = 'real' and
    json_type(v, '\$.results.psnr-rgb') = 'real'
  from j" 2>&1)
[[ $schema == "1|mrt|2|2|$coffee_bpp|1" ]] && ok || bad "eval JSON: got '$schema', want '1|mrt|2|2|$coffee_bpp|1': $(cat "$work/eval.json")"
expect 1 "^mrt: eval: .*no-such-dir: no such file" "$mrt" eval "$work/no-such-dir" --model "$model"
# --refine: the eval JSON records it; 0 steps is the one-pass encoder's very bitstream
expect 0 "" "$mrt" eval "$work/evalset" --model "$model" --threads 2 --refine 2
[[ $(sqlite3 :memory: "select json_extract(readfile('$work/out'), '\$.refine_steps') || '|' ||
  json_type(readfile('$work/out'), '\$.refine_mse_weight')") == "2|null" ]] && ok ||
  bad "eval --refine 2: refine_steps not 2, or refine_mse_weight not null, in $(cat "$work/out")"
expect 0 "" "$mrt" eval "$work/evalset" --model "$model" --threads 2 --refine 2 --refine-mse-weight 16
[[ $(sqlite3 :memory: "select json_extract(readfile('$work/out'), '\$.refine_mse_weight')") == 16 ]] &&
  ok || bad "eval --refine-mse-weight 16: not recorded in $(cat "$work/out")"
expect 0 "bpp" "$mrt" encode "$samples/coffee.jpg" "$work/refine0.mrt" --model "$model" --refine 0
cmp -s "$work/refine0.mrt" "$work/coffee.jpg.mrt" && ok || bad "--refine 0 changed the bitstream"
expect 0 "bpp" "$mrt" encode "$samples/coffee.jpg" "$work/refine2.mrt" --model "$model" --refine 2
expect 0 "" "$mrt" decode "$work/refine2.mrt" "$work/refine2.png" --model "$model" --quiet
expect 2 "usage" "$mrt" encode a b --refine -1
expect 2 "usage" "$mrt" encode a b --refine 10001
expect 2 "usage" "$mrt" encode a b --refine many
# --refine-mse-weight: the seeded model has no MSE term, so weight 0 is its
# own and gives the very bytes; it needs --refine and a weight in [0, 10000]
expect 0 "bpp" "$mrt" encode "$samples/coffee.jpg" "$work/refine2w0.mrt" --model "$model" --refine 2 \
  --refine-mse-weight 0
cmp -s "$work/refine2w0.mrt" "$work/refine2.mrt" && ok ||
  bad "--refine-mse-weight 0 on a model without an MSE term changed the bitstream"
expect 2 "needs --refine" "$mrt" encode a b --refine-mse-weight 16

# A working size (--scale) and a byte budget (--bytes): version-2 streams
# that decode to the original size; the budget is never exceeded.
expect 0 "600x400 coded at 300x200" "$mrt" encode "$samples/coffee.jpg" "$work/half.mrt" \
  --model "$model" --scale 1/2
"$mrt" info "$work/half.mrt" >"$work/half.json" 2>&1
if grep -q '"version": 2, "width": 600, "height": 400, "working_width": 300, "working_height": 200' \
  "$work/half.json"; then ok; else bad "info of a --scale 1/2 stream: $(cat "$work/half.json")"; fi
expect 0 "" "$mrt" decode "$work/half.mrt" "$work/half.png" --model "$model" --quiet
"$mrt" encode "$work/half.png" "$work/half-again.mrt" --model "$model" 2>"$work/err" &&
  grep -q "600x400 ->" "$work/err" && ok || bad "a --scale 1/2 stream did not decode to 600x400"
"$mrt" init-model "$work/model2.gguf" --seed 4 --rate-id 1 >/dev/null 2>&1
for budget in 400 250B 0.3KB; do
  expect 0 "bytes" "$mrt" encode "$samples/coffee.jpg" "$work/budget.mrt" --model "$model" \
    --model "$work/model2.gguf" --bytes "$budget"
  size=$(stat -c %s "$work/budget.mrt")
  limit=${budget%B}; limit=${limit%K}
  [[ $budget == *KB ]] && limit=300
  if (( size <= limit )); then ok; else bad "--bytes $budget gave $size bytes"; fi
done
expect 1 "budget of 12 bytes is too small for this 600x400 image" "$mrt" encode \
  "$samples/coffee.jpg" "$work/x.mrt" --model "$model" --bytes 12
expect 2 "usage" "$mrt" encode a b --bytes 0
expect 2 "usage" "$mrt" encode a b --bytes 2MB
expect 2 "usage" "$mrt" encode a b --bytes -5
expect 2 "usage" "$mrt" encode a b --scale 0
expect 2 "usage" "$mrt" encode a b --scale 1.5
expect 2 "usage" "$mrt" encode a b --scale 1/0
expect 2 "give --scale or --bytes" "$mrt" encode a b --scale 1/2 --bytes 500
expect 2 "an option of encode" "$mrt" decode a b --bytes 500
# decode --scale: thumbnails at 1/2, 1/4, 1/8, each side rounded up (600x400 ->
# 300x200, 150x100, 75x50; the half-size stream 300x200 too); nothing else
for s in 1/2:300x200 1/4:150x100 1/8:75x50; do
  expect 0 "bytes -> ${s#*:} in" "$mrt" decode "$work/coffee.jpg.mrt" "$work/thumb.png" --model "$model" --scale "${s%:*}"
  expect 0 "bytes -> ${s#*:} in" "$mrt" decode "$work/half.mrt" "$work/thumb.png" --model "$model" --scale "${s%:*}"
done
expect 0 "bytes -> 600x400 in" "$mrt" decode "$work/coffee.jpg.mrt" "$work/thumb.png" --model "$model" --scale 1
# fit-thumbnails: the heads beside the model (model.thumbs.gguf), then used by
# decode --scale 1/4 (same sizes); its usage errors
expect 0 "the 1/4 head from 3 photos" "$mrt" fit-thumbnails --model "$model" \
  --data "$samples" --images 3 --crop 256 --threads 1
[[ -s ${model%.gguf}.thumbs.gguf ]] && ok || bad "no ${model%.gguf}.thumbs.gguf"
expect 0 "bytes -> 150x100 in" "$mrt" decode "$work/coffee.jpg.mrt" "$work/thumb.png" --model "$model" --scale 1/4
rm -f "${model%.gguf}.thumbs.gguf"
expect 2 "needs --model M and --data DIR" "$mrt" fit-thumbnails --model "$model"
expect 2 "needs --model M and --data DIR" "$mrt" fit-thumbnails --model "$model" --data "$samples" --images 0
expect 2 "fit-thumbnails takes no operands" "$mrt" fit-thumbnails --model "$model" --data "$samples" extra
# derive-rate-point: a rate point of the model's weights at a working scale,
# with its own rate id; it codes the shrunk copy --scale codes, to the same
# picture, and decodes to the full size; its errors
expect 0 "rate id 5, .* at working scale 0.5" "$mrt" derive-rate-point "$model" \
  "$work/derived.gguf" --scale 1/2 --rate-id 5
expect 0 "600x400 coded at 300x200" "$mrt" encode "$samples/coffee.jpg" "$work/derived.mrt" \
  --model "$work/derived.gguf"
"$mrt" info "$work/derived.mrt" | grep -q '"working_width": 300, "working_height": 200, .*"rate_id": 5' &&
  ok || bad "info of a derived rate point's stream: $("$mrt" info "$work/derived.mrt")"
expect 0 "" "$mrt" decode "$work/derived.mrt" "$work/derived.png" --model "$work/derived.gguf" --quiet
cmp -s "$work/derived.png" "$work/half.png" && ok ||
  bad "a derived rate point at 1/2 decodes to another picture than --scale 1/2"
# --scale replaces the rate point's own working scale (1: the full size)
expect 0 "600x400 -> " "$mrt" encode "$samples/coffee.jpg" "$work/derived-full.mrt" \
  --model "$work/derived.gguf" --scale 1
grep -q "coded at" "$work/err" && bad "--scale 1 with a derived rate point: $(cat "$work/err")" || ok
# its streams never use a thumbnail head: fitting one is refused
expect 1 "working scale of 0.5 .*fit the weights it was made from" "$mrt" fit-thumbnails \
  --model "$work/derived.gguf" --data "$samples" --images 1 --crop 256
cp "$work/derived.gguf" "$work/derived-copy.gguf"
expect 1 "are the same file" "$mrt" derive-rate-point "$work/derived-copy.gguf" \
  "$work/derived-copy.gguf" --scale 1/2 --rate-id 5
cmp -s "$work/derived.gguf" "$work/derived-copy.gguf" && ok || bad "derive-rate-point changed its input"
expect 2 "needs --scale S and --rate-id R" "$mrt" derive-rate-point "$model" "$work/d.gguf" --scale 1/2
expect 2 "needs --scale S and --rate-id R" "$mrt" derive-rate-point "$model" "$work/d.gguf" --rate-id 1
expect 2 "usage" "$mrt" derive-rate-point "$model" "$work/d.gguf" --scale 2 --rate-id 1
expect 2 "usage" "$mrt" derive-rate-point "$model" "$work/d.gguf" --scale 1/2 --rate-id 256
expect 1 "working scale 0.01 is outside" "$mrt" derive-rate-point "$model" "$work/d.gguf" \
  --scale 0.01 --rate-id 1
expect 1 "missing.gguf" "$mrt" derive-rate-point "$work/missing.gguf" "$work/d.gguf" --scale 1/2 --rate-id 1
[[ -e $work/d.gguf ]] && bad "a refused derive-rate-point left a file" || ok
expect 2 "decode --scale takes 1, 1/2, 1/4 or 1/8" "$mrt" decode a b --scale 1/3
expect 2 "decode --scale takes 1, 1/2, 1/4 or 1/8" "$mrt" decode a b --scale 0.3
expect 2 "an option of encode, decode and derive-rate-point" "$mrt" info a --scale 1/2
expect 2 "rate points of encode --bytes" "$mrt" encode a b --model x --model y
for w in -1 10001 nan inf 16x ""; do
  expect 2 "usage" "$mrt" encode a b --refine 2 --refine-mse-weight "$w"
done

# MRT_MODEL is honoured
MRT_MODEL=$model expect 0 "bpp" "$mrt" encode "$samples/coffee.jpg" "$work/env.mrt"

# No model named: the shipped default (models/default.gguf of the source
# tree) is used; without one, a one-line "no model" error.
default_model=$samples/../models/default.gguf
if [[ -f $default_model ]]; then
  expect 0 "bpp" "$mrt" encode "$samples/coffee.jpg" "$work/default.mrt"
  expect 0 "" "$mrt" info "$work/default.mrt"
  fp=$(sha256sum "$default_model" | cut -c1-16)
  grep -q "\"model\": \"$fp\"" "$work/out" && ok || bad "default model: $(cat "$work/out"), want $fp"
  expect 0 "" "$mrt" decode "$work/default.mrt" "$work/default.png" --quiet
  # a stream of another shipped rate point (as encode --bytes may choose)
  # decodes with no model named: the rate point beside the default
  expect 0 "" "$mrt" encode "$samples/coffee.jpg" "$work/r005.mrt" --quiet \
    --model "$samples/../models/mrt-0.005.gguf"
  expect 0 "" "$mrt" decode "$work/r005.mrt" "$work/r005.png" --quiet
  # ... and with MRT_MODEL naming the default, as SQL's mrt_decode does (one model set)
  MRT_MODEL=$default_model expect 0 "" "$mrt" decode "$work/r005.mrt" "$work/r005.png" --quiet
  # --rate: a rate point beside the model, by name, rate id or low/medium/high
  expect 0 "" "$mrt" encode "$samples/coffee.jpg" "$work/low.mrt" --rate low --quiet
  "$mrt" info "$work/low.mrt" | grep -q '"rate_id": 0' && ok || bad "--rate low: not rate id 0"
  cmp -s "$work/low.mrt" "$work/r005.mrt" && ok || bad "--rate low differs from --model mrt-0.005.gguf"
  expect 0 "" "$mrt" encode "$samples/coffee.jpg" "$work/id1.mrt" --rate 1 --quiet
  "$mrt" info "$work/id1.mrt" | grep -q '"rate_id": 1' && ok || bad "--rate 1: not rate id 1"
  expect 1 "no rate point named 'bogus'; rate points beside .*'0.005' \\(rate id 0\\)" \
    "$mrt" encode "$samples/coffee.jpg" "$work/x.mrt" --rate bogus
  # the shipped 0.005 and 0.01 points are the 0.02 weights at 1/2 and 0.7071
  # (models/README.md, "Rate points from one model"): written again from
  # mrt-0.02.gguf they are the same files, byte for byte
  for point in 0.005:0:1/2 0.01:1:0.7071; do
    IFS=: read -r name id scale <<<"$point"
    "$mrt" derive-rate-point "$samples/../models/mrt-0.02.gguf" "$work/again.gguf" \
      --scale "$scale" --rate-id "$id" --quiet
    cmp -s "$work/again.gguf" "$samples/../models/mrt-$name.gguf" && ok ||
      bad "models/mrt-$name.gguf is not mrt-0.02.gguf's weights at $scale: write it again (models/README.md)"
  done
  "$mrt" info "$work/low.mrt" | grep -q '"version": 2, "width": 600, "height": 400, "working_width": 300, "working_height": 200' &&
    ok || bad "--rate low did not code coffee.jpg at 300x200: $("$mrt" info "$work/low.mrt")"
else
  expect 1 "no model" "$mrt" encode "$samples/coffee.jpg" "$work/x.mrt"
fi

# errors: exit 1, one line, a reason
expect 1 "No such file" "$mrt" encode "$work/missing.png" "$work/x.mrt" --model "$model"
echo "hello" >"$work/text.png"
expect 1 "not a PNG or JPEG" "$mrt" encode "$work/text.png" "$work/x.mrt" --model "$model"
expect 1 "model" "$mrt" encode "$samples/coffee.jpg" "$work/x.mrt" --model "$work/text.png"
head -c 30 "$work/coffee.jpg.mrt" >"$work/short.mrt"
expect 1 "truncated|damaged|corrupt" "$mrt" decode "$work/short.mrt" "$work/x.png" --model "$model"
expect 1 "truncated|damaged|corrupt" "$mrt" info "$work/short.mrt"
"$mrt" init-model "$work/other.gguf" --seed 4 2>/dev/null
expect 1 "made with model [0-9a-f]{16}, the loaded model is [0-9a-f]{16}" \
  "$mrt" decode "$work/coffee.jpg.mrt" "$work/x.png" --model "$work/other.gguf"
[[ -e $work/x.png ]] && bad "a failed decode left an output file" || ok
expect 1 "" "$mrt" decode "$work/coffee.jpg.mrt" "$work/no/such/dir/x.png" --model "$model"

# Hostile outputs and inputs (issue 19), all inside $work: an output that
# is a device, FIFO or symbolic link is written into or through, never
# replaced by a file; '-' is standard input or output; a FIFO given as an
# input or a model fails at once instead of waiting for a writer.
h=$work/hostile
mkdir -p "$h"
"$mrt" decode "$work/coffee.jpg.mrt" "$h/ref.png" --model "$model" --quiet
if mknod -m 666 "$h/null" c 1 3 2>/dev/null; then
  expect 0 "" "$mrt" decode "$work/coffee.jpg.mrt" "$h/null" --model "$model" --quiet
  [[ -c $h/null ]] && ok || bad "a device node given as the output was replaced"
else
  echo "test_cli: skipped the device-node output: mknod is not permitted here"
fi
mkfifo "$h/fifo"
expect 1 "FIFO that no process is reading" timeout 20 "$mrt" decode "$work/coffee.jpg.mrt" \
  "$h/fifo" --model "$model" --quiet
cat "$h/fifo" >"$h/from-fifo.png" &
reader=$!
# until cat has the FIFO open, nobody reads it
written=0
for _ in $(seq 100); do
  timeout 20 "$mrt" decode "$work/coffee.jpg.mrt" "$h/fifo" --model "$model" --quiet \
    2>/dev/null && { written=1; break; }
  sleep 0.1
done
(( written )) || kill $reader 2>/dev/null
wait $reader
[[ -p $h/fifo ]] && cmp -s "$h/from-fifo.png" "$h/ref.png" && ok ||
  bad "a FIFO output was replaced, or its reader did not get the PNG"
expect 1 "FIFO that nothing was writing to" timeout 20 "$mrt" encode "$h/fifo" "$h/x.mrt" \
  --model "$model"
expect 1 "not a regular file \(a FIFO\)" timeout 20 "$mrt" encode "$samples/coffee.jpg" \
  "$h/x.mrt" --model "$h/fifo"
expect 1 "FIFO that nothing was writing to" timeout 20 "$mrt" info "$h/fifo"
echo old >"$h/target.png"
ln -s target.png "$h/link.png"
expect 0 "" "$mrt" decode "$work/coffee.jpg.mrt" "$h/link.png" --model "$model" --quiet
[[ -L $h/link.png ]] && cmp -s "$h/target.png" "$h/ref.png" && ok ||
  bad "a symbolic link given as the output was replaced, or its target not written"
ln -s nowhere.png "$h/dangling.png"
expect 1 "symbolic link to nothing" "$mrt" decode "$work/coffee.jpg.mrt" "$h/dangling.png" \
  --model "$model" --quiet
[[ -L $h/dangling.png ]] && ok || bad "a dangling link given as the output was replaced"
"$mrt" decode "$work/coffee.jpg.mrt" - --model "$model" --quiet >"$h/stdout.png" &&
  cmp -s "$h/stdout.png" "$h/ref.png" && ok || bad "decode to '-' did not write the PNG"
"$mrt" decode - /dev/stdout --model "$model" --quiet <"$work/coffee.jpg.mrt" >"$h/devstdout.png" &&
  cmp -s "$h/devstdout.png" "$h/ref.png" && ok || bad "decode from '-' to /dev/stdout"
"$mrt" encode - - --model "$model" --quiet <"$samples/coffee.jpg" >"$h/stdin.mrt" &&
  cmp -s "$h/stdin.mrt" "$work/coffee.jpg.mrt" && ok || bad "encode from '-' to '-'"
# a name of 240 bytes: its temporary file's name must still fit in 255
long=$(printf 'p%.0s' {1..236}).png
expect 0 "" "$mrt" decode "$work/coffee.jpg.mrt" "$h/$long" --model "$model" --quiet
cmp -s "$h/$long" "$h/ref.png" && ok || bad "a 240-byte output name was not written"
# the output is the input: refused, the photo intact
cp "$samples/coffee.jpg" "$h/same.jpg"
ln -s same.jpg "$h/same-link.jpg"
expect 1 "same file" "$mrt" encode "$h/same.jpg" "$h/same.jpg" --model "$model"
expect 1 "same file" "$mrt" encode "$h/same.jpg" "$h/same-link.jpg" --model "$model"
cmp -s "$h/same.jpg" "$samples/coffee.jpg" && ok || bad "encoding a photo onto itself changed it"
# standard output that cannot be written is an error
expect 1 "writing standard output: No space left" bash -c "\"$mrt\" info \"$work/coffee.jpg.mrt\" >/dev/full"
# precise messages: the bad option value is named; the path is not repeated
expect 2 "^mrt: --refine takes a whole number from 0 to 10000, not '-5'" "$mrt" encode a b --refine -5
expect 2 "^mrt: --threads takes a whole number from 0 to 1024, not '99999'" "$mrt" encode a b --threads 99999
expect 2 "^mrt: unknown option '--bogus'" "$mrt" decode a b --bogus
expect 2 "^mrt: one argument too many: 'c'" "$mrt" decode a b c
expect 2 "^mrt: --model needs a value" "$mrt" decode a b --model
: >"$h/zero.png"
expect 1 "^mrt: reading: [^ ]*zero.png: [^/]*$" "$mrt" encode "$h/zero.png" "$h/x.mrt" --model "$model"
expect 1 "ends inside the varint of the height" "$mrt" info <(head -c 7 "$work/coffee.jpg.mrt")

# usage errors: exit 2
expect 2 "usage" "$mrt"
expect 2 "usage" "$mrt" frobnicate
expect 2 "usage" "$mrt" encode onlyone
expect 2 "usage" "$mrt" encode a b --threads lots
expect 2 "usage" "$mrt" decode a b --bogus
expect 0 "" "$mrt" --help

echo "test_cli: $pass passed, $fail failed"
exit $((fail > 0))
