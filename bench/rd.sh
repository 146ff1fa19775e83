#!/usr/bin/env bash
# Rate-distortion of mrt against JPEG, WebP, AVIF and JPEG XL at the same
# bytes (bench/README.md, "bench_rd"). Builds nothing: build bench_rd first
# (cmake --build build --target bench_rd).
#
#   bench/rd.sh [--images DIR] [--limit N] [--out DIR] [--model FILE]... [--bpp X]...
#               [--budget BYTES]... [--full-size-only]
#               [other bench_rd options: --codecs, --factors, --threads, --timeout, ...]
#
#   --images DIR  the images (*.png, *.jpg, *.jpeg, sorted by name); default
#                 ../shared/data/kodak beside the repository (evaluation only:
#                 never copy those images into the repository)
#   --limit N     only the first N images (quick runs)
#   --out DIR     where rd-*.json, rd.md, rd.gp and rd.png go; default bench/results
#   --model FILE  a rate point of ours (repeatable); the classical budget is our bytes
#   --bpp X       a rate point at X bpp for the classical codecs (repeatable);
#                 without --model, --bpp and --budget: 0.005 0.01 0.02 0.05
#   --budget B    a rate point of B bytes per image (2000, 2KB; repeatable): ours
#                 chooses rate point (among the --model files) and working size;
#                 with --full-size-only it keeps the full size (the best --model
#                 that fits)
#
# $BENCH_RD overrides the binary (default build/bench/bench_rd). The run is
# long on 24 images: on a shared machine run it under `nice -n 10`.
# scripts/eval-photos.sh large DIR fetches large photos for --images (10-16 MP).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_RD:-$repo/build/bench/bench_rd}
images_dir=$repo/../shared/data/kodak
out=$repo/bench/results
limit=0
points=()
pass=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --images) images_dir=$2; shift 2 ;;
    --limit) limit=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --model | --bpp | --budget) points+=("$1" "$2"); shift 2 ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    --quiet | --full-size-only) pass+=("$1"); shift ;;
    --*) [[ $# -ge 2 ]] || { echo "rd.sh: $1 needs a value" >&2; exit 2; }
         pass+=("$1" "$2"); shift 2 ;;
    *) echo "rd.sh: unexpected argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -x $bench ]] || { echo "rd.sh: $bench not built (cmake --build build --target bench_rd)" >&2; exit 1; }
[[ -d $images_dir ]] || { echo "rd.sh: no image directory $images_dir" >&2; exit 1; }
[[ $limit =~ ^[0-9]+$ ]] || { echo "rd.sh: --limit wants a number" >&2; exit 2; }
[[ ${#points[@]} -gt 0 ]] || points=(--bpp 0.005 --bpp 0.01 --bpp 0.02 --bpp 0.05)

images=()
while IFS= read -r -d '' f; do images+=("$f"); done < <(
  find "$images_dir" -maxdepth 1 -type f \( -iname '*.png' -o -iname '*.jpg' -o -iname '*.jpeg' \) \
    -print0 | sort -z)
[[ ${#images[@]} -gt 0 ]] || { echo "rd.sh: no PNG/JPEG images in $images_dir" >&2; exit 1; }
if [[ $limit -gt 0 && ${#images[@]} -gt $limit ]]; then images=("${images[@]:0:$limit}"); fi

mkdir -p "$out"
"$bench" "${points[@]}" "${pass[@]}" --out "$out" "${images[@]}"
if command -v gnuplot >/dev/null; then
  (cd "$out" && gnuplot rd.gp) && echo "rd.sh: wrote $out/rd.png"
else
  echo "rd.sh: gnuplot not installed, no rd.png (scripts/install-deps.sh)" >&2
fi
