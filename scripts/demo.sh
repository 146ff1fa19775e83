#!/usr/bin/env bash
# README's first command: install what is missing, build, run the main job.
#
# The main job: the runtime's self-check and benchmark, then every photo in
# samples/ encoded to a few hundred bytes and decoded back with the `mrt`
# command (models/default.gguf, the shipped 0.02 bpp rate point), the same
# in SQL with the quality of each rate point, and an archive of samples/.
# Without models/default.gguf (a checkout without the weights) it falls back
# to a seeded random model: then the pictures are noise, and only the
# pipeline, the sizes and the speed mean anything.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

echo
echo "== runtime self-check and benchmark (bench/README.md explains the columns) =="
./build/bench/bench_runtime --quick

echo
echo "== the codec on samples/ =="
mrt=./build/codec/mrt
out=build/demo
mkdir -p "$out"
if [[ -f models/default.gguf ]]; then
  model=models/default.gguf
else
  model=$out/random.gguf
  "$mrt" init-model "$model" --seed 1
fi
for img in samples/*.jpg samples/*.png; do
  name=$(basename "${img%.*}")
  "$mrt" encode "$img" "$out/$name.mrt" --model "$model"
  "$mrt" decode "$out/$name.mrt" "$out/$name.png" --model "$model"
done
echo "bitstreams and decoded PNGs are in $out/ ('$mrt info $out/coffee.mrt' shows a header)"

echo
echo "== the SQLite extension (ext/README.md) =="
# The extension finds models/default.gguf by itself; the random model needs MRT_MODEL.
[[ $model == models/default.gguf ]] || export MRT_MODEL=$PWD/$model
sql() {
  echo "\$ sqlite3 :memory: \".load build/ext/mrt\" \"$1\""
  sqlite3 :memory: ".load build/ext/mrt" "$1"
}
sql "select length(mrt_encode(readfile('samples/coffee.jpg')))"
sql "select writefile('$out/coffee-sql.png', mrt_decode(mrt_encode(readfile('samples/coffee.jpg'))))"
if [[ $model == models/default.gguf ]]; then
  # every shipped rate point on one photo, and two byte budgets (the encoder
  # then picks the rate point and a working size): bytes and quality, in SQL
  echo "\$ sqlite3 -header -column :memory: \".load build/ext/mrt\" \"with ... (every rate point and two budgets on coffee.jpg)\""
  sqlite3 -header -column :memory: ".load build/ext/mrt" "with r(rate) as (values ('low'), ('medium'), ('high'), ('250B'), ('500B')),
  e(rate, bits) as (select rate, mrt_encode(readfile('samples/coffee.jpg'), rate) from r)
select rate, length(bits) as bytes, round(json_extract(mrt_info(bits), '\$.bpp'), 4) as bpp,
  round(mrt_psnr(readfile('samples/coffee.jpg'), mrt_decode(bits)), 2) as psnr_db,
  round(mrt_msssim(readfile('samples/coffee.jpg'), mrt_decode(bits)), 3) as ms_ssim from e"
fi

echo
echo "== mrtarchive on samples/ (archive-tool/README.md) =="
arch=$out/photos.mrtdb
rm -f "$arch" "$arch-wal" "$arch-shm"
./build/archive-tool/mrtarchive -f "$arch" --model "$model" add samples
./build/archive-tool/mrtarchive -f "$arch" ls
sqlite3 "$arch" ".load build/ext/mrt" \
  "select name, length(data), length(mrt_decode(data)) as png_bytes from images limit 1"
./build/archive-tool/mrtarchive -f "$arch" --model "$model" export "$out/photos.tar.gz"
tar -tzf "$out/photos.tar.gz"
./build/archive-tool/mrtarchive -f "$arch" stats
