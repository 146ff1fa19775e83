#!/usr/bin/env bash
# bench/ingest.sh -- what one host ingests, the inputs of the plan for 10^8
# photos (docs/SCALING.md): `mrtarchive add` images/s and MB/s per encoder
# core, at 768x512 (Kodak) and at 12 MP, the bytes stored per photo, and
# `mrtarchive merge` images/s.
#   bench/ingest.sh BUILD_DIR KODAK_DIR BIG_JPEGS_DIR [OUT.json]
# BIG_JPEGS_DIR: JPEGs of about 12 MP. One encoder (-j 1, one codec thread):
# a host runs one job per core (mrtarchive-parallel), so a host's rate is
# about this times its cores, memory bandwidth allowing.
set -eu
BUILD=$1 KODAK=$2 BIG=$3 OUT=${4:-/dev/stdout}
A=$(realpath "$BUILD")/archive-tool/mrtarchive
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export MRT_THREADS=1 OMP_WAIT_POLICY=PASSIVE

# run NAME DIR: add every image of DIR with one encoder; prints a JSON member
run() {
  local name=$1 dir=$2
  (cd "$dir" && find . -maxdepth 1 -type f \( -name '*.png' -o -name '*.jpg' \)) | sort >"$T/$name.list"
  local n bytes_in start end
  n=$(wc -l <"$T/$name.list")
  bytes_in=$(cd "$dir" && xargs -d '\n' stat -c %s <"$T/$name.list" | awk '{s += $1} END {print s}')
  start=$(date +%s.%N)
  (cd "$dir" && "$A" -q -j 1 -f "$T/$name.mrtdb" add -T "$T/$name.list")
  end=$(date +%s.%N)
  local stored pixels
  stored=$(sqlite3 "$T/$name.mrtdb" 'select sum(length(data)) from images')
  pixels=$(sqlite3 "$T/$name.mrtdb" 'select sum(width * height) from images')
  awk -v name="$name" -v n="$n" -v b="$bytes_in" -v s="$stored" -v p="$pixels" -v t0="$start" -v t1="$end" \
    'BEGIN { t = t1 - t0; printf "  \"%s\": {\"images\": %d, \"seconds\": %.2f, \"images_per_s\": %.3f, \"mb_in_per_s\": %.3f, \"megapixels_per_s\": %.3f, \"mean_megapixels\": %.2f, \"bytes_stored_per_photo\": %.0f, \"bytes_in_per_photo\": %.0f}", name, n, t, n / t, b / 1e6 / t, p / 1e6 / t, p / 1e6 / n, s / n, b / n }'
}

{
  echo "{"
  run kodak_768x512 "$KODAK"; echo ","
  run jpeg_12mp "$BIG"; echo ","
  # merge: a shard of 100,000 names (the Kodak rows copied under new names)
  cp "$T/kodak_768x512.mrtdb" "$T/shard.mrtdb"
  sqlite3 "$T/shard.mrtdb" "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 100000)
    INSERT INTO images(name, mtime, sz, format, width, height, model, rate_id, data)
      SELECT 'm/' || i || '.png', i, sz, format, width, height, model, rate_id, data
      FROM k JOIN images ON images.id = 1 + k.i % 24;
    INSERT INTO image_sha256(id, sha256) SELECT id, printf('%064x', id) FROM images WHERE name LIKE 'm/%';"
  start=$(date +%s.%N)
  "$A" -q merge "$T/merged.mrtdb" "$T/shard.mrtdb"
  end=$(date +%s.%N)
  size=$(stat -c %s "$T/merged.mrtdb")
  awk -v t0="$start" -v t1="$end" -v sz="$size" \
    'BEGIN { t = t1 - t0; printf "  \"merge\": {\"images\": 100024, \"seconds\": %.2f, \"images_per_s\": %.0f, \"archive_bytes_per_photo\": %.0f}\n", t, 100024 / t, sz / 100024 }'
  echo "}"
} >"$OUT"
