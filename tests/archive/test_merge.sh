#!/usr/bin/env bash
# `mrtarchive merge OUT SHARD...` (ctest archive_merge): shards made apart
# merge into what one `add -T` of the same list makes (names, mtimes,
# bitstreams, originals, ingest errors); merging again changes nothing, not a
# byte of the dump; a name OUT shows a different photo under is kept as OUT's
# and reported; a shard of another model is refused with its images listed;
# hostile shards (not a database, bad headers, unsafe names, OUT itself) are
# refused with nothing merged; kill -9 at random moments leaves OUT as it was
# or complete.
#   test_merge.sh MRTARCHIVE MRT_CLI SOURCE_DIR
set -u
A=$1 MRT=$2 SRC=$3
export OMP_WAIT_POLICY=PASSIVE MRT_THREADS=${MRT_THREADS:-1}
for tool in sqlite3 python3; do
  command -v $tool >/dev/null || { echo "$tool not installed: skipped"; exit 77; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/mrtarchive-merge.XXXXXX")
trap '[ -n "${KEEP_TMP:-}" ] && echo "kept $T" || rm -rf "$T"' EXIT
cd "$T"
source "$SRC/tests/archive/checks.sh"
dump() { sqlite3 "$1" .dump | sha256sum; }

# two small random models: the archive's, and another one
"$MRT" init-model model.gguf --seed 1 >/dev/null 2>&1 && "$MRT" init-model other.gguf --seed 2 >/dev/null 2>&1 \
  || { echo "FAIL cannot make the models"; exit 1; }
M=(--model "$T/model.gguf")

# --- photos, and shards of them -------------------------------------------------
mkdir -p photos/a photos/b "photos/c d"
cp "$SRC"/samples/*.png "$SRC"/samples/*.jpg photos/a/
for i in 1 2 3 4; do python3 "$SRC/tests/archive/mkpng.py" "photos/b/gen-$i.png" 64 48 "$i"; done
cp photos/a/coffee.jpg "photos/c d/coffee again.jpg"  # same bytes, another shard
cp photos/b/gen-1.png photos/b/gen-1-copy.png        # same bytes, same shard
head -c 2000 /dev/urandom >photos/b/broken.jpg       # an ingest error
find photos -type f | sort >list
grep '^photos/a/' list >list1
grep '^photos/b/' list >list2
grep '^photos/c d/' list >list3
expect 1 "one-machine add of the list (the broken JPEG fails)" "$A" -q -f single.mrtdb "${M[@]}" add --keep-original -T list
expect 0 "shard 1 (with originals)" "$A" -q -f s1.mrtdb "${M[@]}" add --keep-original -T list1
expect 1 "shard 2 (with originals, a broken file)" "$A" -q -f s2.mrtdb "${M[@]}" add --keep-original -T - <list2
expect 0 "shard 3 (with originals)" "$A" -q -f s3.mrtdb "${M[@]}" add --keep-original -T list3

# add -T: the list's forms
printf 'photos/a/camera.png\n./photos//b/gen-2.png\n\nphotos/b\n' >nl.list
expect 1 "add -T, one path a line ('./', '//', an empty line, a folder with the broken JPEG)" "$A" -q -f t1.mrtdb "${M[@]}" add -T nl.list
check "... names as listed, normalised; the folder walked under its path" \
  [ "$(q t1.mrtdb "select group_concat(name, ' ') from (select name from names order by name)")" = \
    "photos/a/camera.png photos/b/gen-1-copy.png photos/b/gen-1.png photos/b/gen-2.png photos/b/gen-3.png photos/b/gen-4.png" ]
mkdir -p nl && printf 'x' >$'nl/a\nb.png' && printf 'photos/a/coffee.jpg\0nl/a\nb.png\0' >nul.list
expect 1 "add -T, NUL-separated, a name with a newline (refused: a control character)" "$A" -q -f t2.mrtdb "${M[@]}" add -T nul.list
check "... the rest stored" [ "$(q t2.mrtdb "select name from images")" = photos/a/coffee.jpg ]
{ printf 'photos/a/camera.png\n'; head -c 5000 /dev/zero | tr '\0' a; printf '\n'; } >long.list
expect 1 "add -T, a path over 4096 bytes" "$A" -q -f t3.mrtdb "${M[@]}" add -T long.list
check "... one line naming the entry" grep -q -- '--files-from entry 2: a path over 4096 bytes' err
expect 2 "add -T, a list that is missing" "$A" -q -f t4.mrtdb "${M[@]}" add -T none.list
expect 2 "add -T, a folder as the list" "$A" -q -f t4.mrtdb "${M[@]}" add -T photos

contents single.mrtdb >single.txt

# --- the merge ---------------------------------------------------------------------
expect 0 "merge OUT s1 s2 s3 (OUT created)" "$A" "${M[@]}" merge out.mrtdb s1.mrtdb s2.mrtdb s3.mrtdb
check "... the summary" grep -q 'merged 3 shards: 9 images stored, 2 further names, 0 unchanged, 0 conflicts, 9 originals kept, 1 ingest errors carried' err
contents out.mrtdb >out.txt
check "... equals a one-machine add (names, mtimes, bitstreams, originals, errors)" cmp -s single.txt out.txt
cmp -s single.txt out.txt || diff single.txt out.txt
check "... content stored once across shards" [ "$(q out.mrtdb 'select count(*) from images')" = 9 ]
check "... the coffee's two names show one image" \
  [ "$(q out.mrtdb "select count(distinct id) from names where name in ('photos/a/coffee.jpg', 'photos/c d/coffee again.jpg')")" = 1 ]
check "... passes verify" "$A" -q -f out.mrtdb "${M[@]}" verify

# idempotent: the same shards again, in another order, change nothing
before=$(dump out.mrtdb)
expect 0 "the same shards merged again, in another order" "$A" "${M[@]}" merge out.mrtdb s3.mrtdb s1.mrtdb s2.mrtdb s1.mrtdb
check "... all unchanged" grep -q 'merged 4 shards: 0 images stored, 0 further names, 16 unchanged, 0 conflicts, 0 originals kept, 0 ingest errors carried' err
check "... not a byte of the dump changed" [ "$before" = "$(dump out.mrtdb)" ]
expect 0 "--json summary" "$A" --json "${M[@]}" merge out.mrtdb s1.mrtdb
check "... is JSON with the counts" [ "$(q :memory: "select json_extract('$(cat out)', '\$.unchanged')")" = 5 ]

# a shard without originals adds none; one with them fills in what OUT lacks
expect 0 "a shard stored without originals" "$A" -q -f bare.mrtdb "${M[@]}" add -T list1
expect 0 "... merged into a new archive" "$A" -q "${M[@]}" merge fill.mrtdb bare.mrtdb
check "... no originals" [ "$(q fill.mrtdb 'select count(*) from originals')" = 0 ]
expect 0 "... then the shard with them" "$A" -q "${M[@]}" merge fill.mrtdb s1.mrtdb
check "... the originals filled in" [ "$(q fill.mrtdb 'select count(*) from originals')" = 5 ]

# --- conflicts: the same name, another photo ---------------------------------------
mkdir -p other/photos/a
python3 "$SRC/tests/archive/mkpng.py" other/photos/a/camera.png 64 48 99
python3 "$SRC/tests/archive/mkpng.py" other/photos/a/new.png 64 48 98
(cd other && "$A" -q -f ../conflict.mrtdb "${M[@]}" add -T - <<<$'photos/a/camera.png\nphotos/a/new.png')
cp out.mrtdb before.mrtdb
expect 1 "a shard with another photo under an existing name: exit 1" "$A" "${M[@]}" merge out.mrtdb conflict.mrtdb
check "... reported by name" grep -q 'photos/a/camera.png: the output has a different photo under this name' err
check "... the output's photo kept" [ "$(q out.mrtdb "select hex(data) from images where name = 'photos/a/camera.png'")" = \
  "$(q before.mrtdb "select hex(data) from images where name = 'photos/a/camera.png'")" ]
check "... the rest merged" [ "$(q out.mrtdb "select count(*) from images where name = 'photos/a/new.png'")" = 1 ]

# --- another model: refused, its images listed, nothing written ----------------------
"$A" -q -f foreign.mrtdb --model "$T/other.gguf" add -T list1
before=$(dump out.mrtdb)
expect 2 "a shard encoded with a model outside OUT's set: exit 2" "$A" "${M[@]}" merge out.mrtdb s2.mrtdb foreign.mrtdb
check "... names the fingerprint and the count" grep -q 'foreign.mrtdb: 5 images were made with model [0-9a-f]\{16\}, which is not among the models that decode the output' err
check "... lists its images" grep -q '^  photos/a/coffee.jpg$' err
check "... nothing merged, not even the good shard" [ "$before" = "$(dump out.mrtdb)" ]
expect 0 "... merged once the model is the shard's" "$A" -q --model "$T/other.gguf" merge foreign-out.mrtdb foreign.mrtdb
# retired weights (models/retired/, kept for decoding) count as the output's
mkdir -p set/retired && cp model.gguf set/mrt-now.gguf && cp other.gguf set/retired/mrt-before.gguf
expect 0 "... or once that model is retired beside the output's (decode only)" \
  "$A" -q --model "$T/set/mrt-now.gguf" merge retired-out.mrtdb foreign.mrtdb s2.mrtdb
check "... its 5 photos stored" [ "$(q retired-out.mrtdb "select count(*) from images where name like 'photos/a/%'")" = 5 ]
expect 0 "... and the archive decodes every photo, old model and new (verify)" "$A" -q -f retired-out.mrtdb --model "$T/set/mrt-now.gguf" verify

# --- hostile and broken shards -------------------------------------------------------
head -c 8192 /dev/urandom >noise.mrtdb
expect 2 "a shard that is not a database" "$A" "${M[@]}" merge out.mrtdb noise.mrtdb
check "... one line saying so" [ "$(wc -l <err)" -le 2 ]
q plain.db 'create table t(x)'
expect 2 "an SQLite file that is not an archive" "$A" "${M[@]}" merge out.mrtdb plain.db
check "... saying so" grep -q 'plain.db: not an mrt archive' err
expect 2 "a missing shard" "$A" "${M[@]}" merge out.mrtdb missing.mrtdb
expect 2 "OUT as its own shard" "$A" "${M[@]}" merge out.mrtdb out.mrtdb
check "... saying so" grep -q 'is the output archive itself' err
expect 2 "-f with merge is refused (it would name the output twice)" "$A" -f out.mrtdb "${M[@]}" merge s1.mrtdb s2.mrtdb
cp s1.mrtdb badhdr.mrtdb
q badhdr.mrtdb "update images set data = x'00112233' || substr(data, 5) where name = 'photos/a/camera.png'"
expect 2 "a shard with a damaged bitstream" "$A" "${M[@]}" merge out.mrtdb badhdr.mrtdb
check "... names the image" grep -q "badhdr.mrtdb: image [0-9]* ('photos/a/camera.png')" err
cp s1.mrtdb lie.mrtdb
q lie.mrtdb "update images set width = width + 1 where name = 'photos/a/camera.png'"
expect 2 "a shard whose row disagrees with its bitstream" "$A" "${M[@]}" merge out.mrtdb lie.mrtdb
check "... saying so" grep -q 'disagree with the bitstream header' err
# a hand-made archive without the schema's CHECKs, holding an unsafe name
python3 - <<'EOF'
import sqlite3
src = sqlite3.connect('s1.mrtdb')
row = src.execute("SELECT mtime, sz, format, width, height, model, rate_id, data FROM images LIMIT 1").fetchone()
db = sqlite3.connect('evil.mrtdb')
db.executescript("PRAGMA application_id = 1297240129; PRAGMA user_version = 2;"
                 "CREATE TABLE images(id INTEGER PRIMARY KEY, name, mtime, sz, format, width, height, model, rate_id, data);"
                 "CREATE TABLE aliases(name, image_id, mtime);")
db.execute("INSERT INTO images(name, mtime, sz, format, width, height, model, rate_id, data) VALUES (?,?,?,?,?,?,?,?,?)",
           ('../../etc/passwd',) + row)
db.commit()
EOF
expect 2 "a shard with the name '../../etc/passwd'" "$A" "${M[@]}" merge out.mrtdb evil.mrtdb
check "... refused" grep -q 'not a safe relative path; nothing merged' err
check "... nothing merged from any of them" [ "$before" = "$(dump out.mrtdb)" ]

# --- kill -9 mid-merge: OUT as it was, or complete ----------------------------------
# a big shard: 20,000 names (copies of one row under fresh names and hashes)
cp s1.mrtdb big.mrtdb
q big.mrtdb "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 20000)
  INSERT INTO images(name, mtime, sz, format, width, height, model, rate_id, data)
    SELECT 'big/' || i || '.png', 1600000000 + i, sz, format, width, height, model, rate_id, data
    FROM k, (SELECT * FROM images WHERE name = 'photos/a/camera.png');
  INSERT INTO image_sha256(id, sha256) SELECT id, printf('%064x', id) FROM images WHERE name LIKE 'big/%';"
base=$(q out.mrtdb 'select count(*) from images')
states=""
for i in $(seq 1 12); do
  rm -f crash.mrtdb*
  cp out.mrtdb crash.mrtdb
  "$A" -q "${M[@]}" merge crash.mrtdb big.mrtdb 2>/dev/null &
  pid=$!
  sleep "$(printf '0.%03d' $((RANDOM % 500)))" # the merge takes about half a second
  kill -KILL $pid 2>/dev/null
  wait $pid 2>/dev/null
  # pages in the WAL before anything reads it: killed inside the transaction
  wal=; [ -s crash.mrtdb-wal ] && wal=" (mid-transaction)"
  n=$(q crash.mrtdb 'select count(*) from images')
  [ "$(q crash.mrtdb 'pragma integrity_check')" = ok ] || states="$states corrupt"
  if [ "$n" = "$base" ]; then states="$states before$wal"
  elif [ "$n" = $((base + 20000)) ]; then states="$states complete"
  else states="$states partial:$n"; fi
done
echo "info kill -9 mid-merge gave:$states"
check "kill -9 mid-merge: every time as it was or complete, integrity_check ok" \
  bash -c "! grep -q 'partial\|corrupt' <<<'$states'"
check "... and some of the kills landed inside the merge's transaction" grep -q mid-transaction <<<"$states"
expect 0 "... then the merge completes" "$A" -q "${M[@]}" merge crash.mrtdb big.mrtdb
check "... with every name" [ "$(q crash.mrtdb 'select count(*) from images')" = $((base + 20000)) ]

# --- kill -9 mid-backup (issue 22): DEST absent or complete, never partial ---------------
nbig=$(q big.mrtdb 'select count(*) from images')
bstates=""
for i in $(seq 1 8); do
  rm -f bk.mrtdb bk.mrtdb.tmp-*
  "$A" -q -f big.mrtdb "${M[@]}" backup bk.mrtdb 2>/dev/null &
  pid=$!
  sleep "$(printf '0.%03d' $((RANDOM % 300)))"
  kill -KILL $pid 2>/dev/null
  wait $pid 2>/dev/null
  if [ ! -e bk.mrtdb ]; then bstates="$bstates none"
  elif [ "$(q bk.mrtdb 'pragma integrity_check')" = ok ] && [ "$(q bk.mrtdb 'select count(*) from images')" = "$nbig" ]; then
    bstates="$bstates complete"
  else bstates="$bstates PARTIAL"; fi
done
echo "info kill -9 mid-backup gave:$bstates"
check "kill -9 mid-backup: DEST absent or complete every time" bash -c "! grep -q PARTIAL <<<'$bstates'"

echo "$fails failed"
[ $fails = 0 ]
