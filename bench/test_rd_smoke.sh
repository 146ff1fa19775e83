#!/usr/bin/env bash
# bench_rd end to end, small and fast: the Lanczos self-test, then two
# samples shrunk to 160 pixels through our codec (a seeded random model:
# its quality is noise, only the code path is checked) and every installed
# classical codec at 0.05 and 0.4 bpp, at five of the downscale factors
# (for speed). Checks the JSON's keys and that its values are sane (budgets
# kept, PSNR in 5..60 dB, MS-SSIM in 0..1, known factors), that no
# temporary file is left, and that gnuplot (when installed) turns rd.gp
# into a PNG.
# Exit 77 (ctest: skipped) when no classical codec is installed.
#
#   test_rd_smoke.sh BENCH_RD MRT_CLI SAMPLES_DIR
set -uo pipefail
bench=$1
mrt=$2
samples=$3
work=$(mktemp -d /tmp/bench-rd-smoke-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

"$bench" --self-test || bad "Lanczos self-test"

codecs=()
for pair in jpeg:cjpeg:djpeg webp:cwebp:dwebp avif:avifenc:avifdec jxl:cjxl:djxl; do
  IFS=: read -r name enc dec <<<"$pair"
  command -v "$enc" >/dev/null && command -v "$dec" >/dev/null && codecs+=("$name")
done
if [[ ${#codecs[@]} -eq 0 ]]; then
  echo "SKIP: no classical codec installed (scripts/install-deps.sh installs them)"
  [[ $fail -eq 0 ]] && exit 77 || exit 1
fi
echo "codecs: ${codecs[*]}"

"$mrt" init-model "$work/random.gguf" --seed 1 >/dev/null || bad "init-model"
mkdir "$work/out" "$work/tmp"
start=$SECONDS
if ! TMPDIR=$work/tmp "$bench" --max-side 160 --model "$work/random.gguf" --bpp 0.05 --bpp 0.4 --out "$work/out" \
    --keep-decoded "$work/keep" \
    --codecs "$(IFS=,; echo "${codecs[*]}")" --factors 1,1.5,3,8,16 --timeout 20 \
    "$samples/chelsea.png" "$samples/coffee.jpg" 2>"$work/log"; then
  cat "$work/log"
  bad "bench_rd failed"
  exit 1
fi
echo "bench_rd took $((SECONDS - start)) s"
[[ -z $(ls -A "$work/tmp") ]] || bad "temporary files left: $(ls -A "$work/tmp")"
grep -q "bench_rd: wrote" "$work/log" || bad "no summary line"
# --keep-decoded: the reference and every compared picture, each at the
# reference's size (a PNG's width and height: bytes 16-23)
png_size() { od -An -tu1 -j16 -N8 "$1" 2>/dev/null | tr -s ' '; }
for img in chelsea coffee; do
  ref=$work/keep/$img.png
  [[ -s $ref ]] || { bad "--keep-decoded: no $img.png"; continue; }
  for pic in "$img.random.mrt.png" $(for c in "${codecs[@]}"; do echo "$img.0.4bpp.$c.png"; done); do
    [[ -s $work/keep/$pic ]] || { bad "--keep-decoded: no $pic"; continue; }
    [[ $(png_size "$work/keep/$pic") == "$(png_size "$ref")" ]] ||
      bad "--keep-decoded: $pic is not the reference's size"
  done
done

# value KEY LINE: the number after "KEY": on LINE (first occurrence)
value() { grep -o "\"$1\": [-0-9.e+]*" <<<"$2" | head -1 | sed 's/.*: //'; }
# in_range V LO HI: LO <= V <= HI
in_range() { awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v != "" && v + 0 >= lo && v + 0 <= hi) }'; }

for name in mrt "${codecs[@]}"; do
  json=$work/out/rd-$name.json
  [[ -s $json ]] || { bad "$name: no $json"; continue; }
  if command -v python3 >/dev/null && ! python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$json" 2>/dev/null; then
    bad "$name: not valid JSON"
  fi
  for key in bpp psnr-rgb ms-ssim-rgb encoding_time decoding_time; do
    grep -q "^    \"$key\": \[" "$json" || bad "$name: results lack \"$key\""
  done
  # every image that fits: within its budget, sane quality, a known factor
  fitted=0
  while IFS= read -r line; do
    [[ $line == *'"fits": true'* ]] || continue
    fitted=$((fitted + 1))
    img=$(grep -o '"image": "[^"]*"' <<<"$line")
    budget=$(value budget_bytes "$line")
    bytes=$(value bytes "$line")
    [[ -n $bytes && -n $budget && $bytes -le $budget ]] || bad "$name $img: $bytes bytes over the budget $budget"
    in_range "$(value psnr-rgb "$line")" 5 60 || bad "$name $img: PSNR $(value psnr-rgb "$line")"
    in_range "$(value ms-ssim-rgb "$line")" 0 1 || bad "$name $img: MS-SSIM $(value ms-ssim-rgb "$line")"
    in_range "$(value encoding_time "$line")" 0 60 || bad "$name $img: encoding_time"
    in_range "$(value decoding_time "$line")" 0 60 || bad "$name $img: decoding_time"
    factor=$(value factor "$line")
    [[ " 1 1.5 3 8 16 " == *" $factor "* ]] || bad "$name $img: factor '$factor'"
  done < <(grep '{"image": ' "$json")
  # ours: both images at its one point; classical: at least both at 0.4 bpp
  [[ $fitted -ge 2 ]] || bad "$name: only $fitted image(s) fit"
  # at 0.4 bpp every codec fits both images, so the mean is in the results
  means=$(sqlite3 :memory: "select count(*) from json_each(readfile('$json'), '\$.rate_points')
    where json_extract(value, '\$.target') = '0.4 bpp' and json_type(value, '\$.mean') = 'object'")
  [[ $means == 1 || $name == mrt ]] || bad "$name: no mean at 0.4 bpp"
done

[[ -s $work/out/rd.md ]] && grep -q '^| rate point | codec |' "$work/out/rd.md" || bad "rd.md"
[[ -s $work/out/rd.gp ]] || bad "rd.gp"
if command -v gnuplot >/dev/null; then
  (cd "$work/out" && gnuplot rd.gp) || bad "gnuplot rd.gp"
  [[ $(head -c 4 "$work/out/rd.png" | od -An -c | tr -d ' ') == '211PNG' ]] || bad "rd.png is not a PNG"
fi

if [[ $fail -ne 0 ]]; then
  cat "$work/log"
  echo "$fail failure(s)"
  exit 1
fi
echo "bench_rd smoke test passed"
