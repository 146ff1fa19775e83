#!/usr/bin/env bash
# The mrtarchive command end to end (ctest archive_cli).
#   test_archive.sh MRTARCHIVE MRT_CLI MRT_SO SOURCE_DIR [ASAN_RUNTIME]
# ASAN_RUNTIME (a sanitized build): preloaded into sqlite3 for `.load mrt`.
set -u
A=$1 MRT=$2 SO=$3 SRC=$4 ASAN_RT=${5:-}
export OMP_WAIT_POLICY=PASSIVE MRT_THREADS=${MRT_THREADS:-1}
command -v sqlite3 >/dev/null || { echo "sqlite3 not installed: skipped"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/mrtarchive-test.XXXXXX")
trap 'for m in ro full small; do umount "$T/$m" 2>/dev/null; done; rm -rf "$T"' EXIT
cd "$T"
source "$SRC/tests/archive/checks.sh"

"$MRT" init-model "$T/model.gguf" --seed 1 --quiet >/dev/null 2>&1 || "$MRT" init-model "$T/model.gguf" --seed 1 \
  || { echo "cannot make a model"; exit 1; }
M=(--model "$T/model.gguf")
DB=$T/a.mrtdb

# --- help and usage ---------------------------------------------------------
for c in add ls info cat extract export verify rm stats serve backup merge; do
  expect 0 "$c --help" "$A" "$c" --help
done
expect 2 "no command is a usage error" "$A"
expect 2 "unknown command" "$A" frobnicate
expect 2 "ls on a missing archive" "$A" -f "$T/none.mrtdb" ls

# --- samples twice ------------------------------------------------------------
cp -r "$SRC/samples" "$T/samples"
expect 0 "add samples" "$A" -f "$DB" "${M[@]}" add samples
check "5 images stored" [ "$(q "$DB" 'select count(*) from images')" = 5 ]
check "README skipped with a reason" grep -q 'skipped samples/README.md: not a PNG or JPEG' "$T/err"
expect 0 "add samples again" "$A" -f "$DB" "${M[@]}" add samples
check "second run encodes nothing" grep -q '^0 stored, 5 unchanged' "$T/err"
check "journal is WAL" [ "$(q "$DB" 'pragma journal_mode')" = wal ]
check "schema version 2" [ "$(q "$DB" 'pragma user_version')" = 2 ]
# The same bytes under another name: stored once, and both names kept.
mkdir copies && cp samples/coffee.jpg copies/coffee-again.jpg
expect 0 "add a duplicate" "$A" -f "$DB" "${M[@]}" add copies
check "duplicate not stored twice" [ "$(q "$DB" 'select count(*) from images')" = 5 ]
check "duplicate reported" grep -q 'same content as samples/coffee.jpg, stored once under both names' "$T/err"
check "... its name kept" [ "$(q "$DB" "select count(*) from names where name in ('copies/coffee-again.jpg', 'samples/coffee.jpg')")" = 2 ]

expect 0 "ls" "$A" -f "$DB" ls
check "ls lists the names" [ "$(head -1 "$T/out")" = copies/coffee-again.jpg ]
expect 0 "ls --json" "$A" -f "$DB" ls --json
check "ls --json is JSON" [ "$(q :memory: "select json_array_length(readfile('$T/out'))")" = 6 ]
expect 0 "info" "$A" -f "$DB" info samples/coffee.jpg --json
check "info has the header" [ "$(q :memory: "select json_extract(readfile('$T/out'), '\$.header.width')")" = 600 ]
expect 1 "info of a missing name" "$A" -f "$DB" info nope.jpg
expect 0 "stats --json" "$A" -f "$DB" stats --json
check "stats counts" [ "$(q :memory: "select json_extract(readfile('$T/out'), '\$.images')")" = 5 ]
"$A" -f "$DB" "${M[@]}" cat samples/camera.png >cat.png; check "cat exit 0" [ $? = 0 ]
check "cat writes a PNG" [ "$(head -c 8 cat.png | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]
# cat --scale: a thumbnail, 512x512 at 1/4 is 128x128 (the PNG's IHDR)
"$A" -f "$DB" "${M[@]}" cat --scale 1/4 samples/camera.png >cat4.png
check "cat --scale 1/4 is 128x128" [ "$(od -An -tx1 -j16 -N8 cat4.png | tr -d ' \n')" = 0000008000000080 ]
expect 2 "cat --scale 1/3 is refused" "$A" -f "$DB" "${M[@]}" cat --scale 1/3 samples/camera.png
check "... naming what it takes" grep -q "expected 1/2, 1/4 or 1/8" "$T/err"
expect 2 "cat --original --scale is refused" "$A" -f "$DB" cat --original --scale 1/2 samples/camera.png
expect 0 "verify" "$A" -f "$DB" "${M[@]}" verify

# --- bad inputs ---------------------------------------------------------------
mkdir mixed
python3 "$SRC/tests/archive/mkpng.py" mixed/good.png 32 24 3
: >mixed/empty.png
head -c 3000 samples/camera.png >mixed/truncated.png
head -c 5000 /dev/urandom >mixed/corrupt.jpg
printf '\xff\xd8\xff' >mixed/header-only.jpg; head -c 2000 /dev/urandom >>mixed/header-only.jpg
echo hello >mixed/notes.txt
expect 1 "add a folder with damaged files: exit 1" "$A" -f "$DB" "${M[@]}" add mixed
check "good file stored" [ "$(q "$DB" "select count(*) from images where name = 'mixed/good.png'")" = 1 ]
check "damaged files recorded" [ "$(q "$DB" "select count(distinct name) from ingest_errors where name like 'mixed/%'")" = 4 ]
check "text file only skipped" [ "$(q "$DB" "select count(*) from ingest_errors where name = 'mixed/notes.txt'")" = 0 ]
python3 "$SRC/tests/archive/mkpng.py" mixed/fresh.png 40 30 7
expect 1 "add again: still exit 1 for the damaged files" "$A" -f "$DB" "${M[@]}" add mixed
check "errors not repeated by a re-run" [ "$(q "$DB" "select count(*) from ingest_errors where name like 'mixed/%'")" = 4 ]
check "new good file stored" [ "$(q "$DB" "select width || 'x' || height from images where name = 'mixed/fresh.png'")" = 40x30 ]
check "stats lists errors" sh -c "'$A' -f '$DB' stats | grep -q 'error: mixed/truncated.png'"

# --- archives in --------------------------------------------------------------
mkdir -p tree/in/sub && cp samples/chelsea.png tree/in/sub/cat.png && cp samples/astronaut.jpg tree/in/a.jpg
echo text >tree/in/readme.txt
tar -C tree -czf in.tar.gz in
python3 -c "
import zipfile
with zipfile.ZipFile('in.zip', 'w') as z:
    z.write('tree/in/sub/cat.png', 'zipped/sub/cat.png'); z.write('tree/in/a.jpg', 'zipped/a.jpg')
    z.writestr('zipped/notes.txt', 'hi')"
DB2=$T/b.mrtdb
expect 0 "add a .tar.gz" "$A" -f "$DB2" "${M[@]}" add in.tar.gz
check ".tar.gz entries stored" [ "$(q "$DB2" "select group_concat(name, ' ') from (select name from images order by name)")" = "in/a.jpg in/sub/cat.png" ]
rm "$DB2" "$DB2"-wal "$DB2"-shm 2>/dev/null
expect 0 "add a .zip" "$A" -f "$DB2" "${M[@]}" add in.zip
check ".zip entries stored" [ "$(q "$DB2" "select group_concat(name, ' ') from (select name from images order by name)")" = "zipped/a.jpg zipped/sub/cat.png" ]
expect 0 "add the .zip again: unchanged" "$A" -f "$DB2" "${M[@]}" add in.zip
check "zip re-run encodes nothing" grep -q '^0 stored, 2 unchanged' "$T/err"

python3 -c "
import tarfile
with tarfile.open('hostile.tar', 'w') as t:
    t.add('tree/in/a.jpg', '../escape.jpg'); t.add('tree/in/sub/cat.png', 'ok/cat.png')"
DB5=$T/h.mrtdb
expect 1 "add a tar with a '..' entry: exit 1" "$A" -f "$DB5" "${M[@]}" add hostile.tar
check "'..' entry refused, recorded" [ "$(q "$DB5" "select count(*) from ingest_errors where message like '%..%'")/$(q "$DB5" 'select group_concat(name) from images')" = 1/ok/cat.png ]
expect 0 "--rate 0" "$A" -f "$T/r.mrtdb" "${M[@]}" --rate 0 add samples/gravel.jpg
expect 2 "an unknown --rate is fatal" "$A" -f "$T/r.mrtdb" "${M[@]}" --rate high add samples/camera.png
check "--rate error names the rate" grep -q 'rate' "$T/err"
check "--rate 0 stored rate id 0" [ "$(q "$T/r.mrtdb" 'select rate_id from images')" = 0 ]
expect 0 "--bytes 300" "$A" -f "$T/budget.mrtdb" "${M[@]}" --bytes 300 add samples/coffee.jpg
check "--bytes 300 stored at most 300 bytes" [ "$(q "$T/budget.mrtdb" 'select length(data) <= 300 from images')" = 1 ]
"$A" -f "$T/budget.mrtdb" "${M[@]}" cat coffee.jpg >budget.png
check "a --bytes stream decodes at the photo's size" [ "$(od -An -tx1 -j16 -N8 budget.png | tr -d ' \n')" = 0000025800000190 ]
expect 2 "--bytes 2MB is fatal" "$A" -f "$T/budget.mrtdb" "${M[@]}" --bytes 2MB add samples/gravel.jpg
expect 2 "--bytes with --rate is fatal" "$A" -f "$T/budget.mrtdb" "${M[@]}" --rate 0 --bytes 300 add samples/gravel.jpg
expect 2 "--bytes 5 is fatal (too small for anything)" "$A" -f "$T/budget.mrtdb" "${M[@]}" --bytes 5 add samples/gravel.jpg
check "--bytes 5 says why" grep -q 'too small' "$T/err"
expect 0 "--refine 2" "$A" -f "$T/rf.mrtdb" "${M[@]}" --refine 2 add samples/coffee.jpg
"$A" -f "$T/rf.mrtdb" "${M[@]}" cat coffee.jpg >refined.png
check "--refine 2 stored a bitstream that decodes" [ "$(head -c 8 refined.png | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]
expect 2 "--refine -1 is fatal" "$A" -f "$T/rf.mrtdb" "${M[@]}" --refine -1 add samples/gravel.jpg
check "--refine error names the range" grep -q 'expected 0..10000 steps' "$T/err"

# --- export -----------------------------------------------------------------
N=$(q "$DB" 'select count(*) from names')
expect 0 "export .tar.gz" "$A" -f "$DB" "${M[@]}" export out.tar.gz
check "tar -tzf lists every image" [ "$(tar -tzf out.tar.gz | grep -c '\.png$')" = "$N" ]
check "tar has samples/coffee.jpg.png" sh -c "tar -tzf out.tar.gz | grep -qx samples/coffee.jpg.png"
expect 0 "export .zip" "$A" -f "$DB" "${M[@]}" export out.zip
check "unzip -l lists every image" [ "$(unzip -l out.zip | grep -c '\.png$')" = "$N" ]
expect 0 "export .tar" "$A" -f "$DB" "${M[@]}" export out.tar
check "tar -tf" [ "$(tar -tf out.tar | wc -l)" = "$N" ]
for f in out.tar.xz out.tar.zst; do
  expect 0 "export $f" "$A" -f "$DB" "${M[@]}" export $f
  check "$f readable" [ "$(tar -tf $f | wc -l)" = "$N" ]
done
expect 2 "export to an unknown format" "$A" -f "$DB" export out.rar
expect 0 "export --sqlar" "$A" -f "$DB" "${M[@]}" export --sqlar out.sqlar
mkdir unpacked && (cd unpacked && sqlite3 ../out.sqlar -Ax) ; check "sqlite3 -Ax unpacks" [ -s unpacked/samples/camera.png ]
check "sqlar PNG equals cat" cmp -s unpacked/samples/camera.png cat.png

# --- extract, and hostile names ------------------------------------------------
mkdir x
expect 0 "extract all" "$A" -f "$DB" "${M[@]}" extract -C x
check "extracted file equals cat" cmp -s x/samples/camera.png cat.png
mkdir y; ln -s /tmp y/samples
expect 1 "extract refuses a symlinked folder" "$A" -f "$DB" "${M[@]}" extract samples/camera.png -C y
check "nothing written through the symlink" [ ! -e /tmp/camera.png ] 
cp "$DB" evil.mrtdb
q evil.mrtdb "PRAGMA ignore_check_constraints = ON; UPDATE images SET name = '../evil.jpg' WHERE name = 'samples/coffee.jpg'; INSERT INTO images(name, sz, format, width, height, model, rate_id, data) SELECT '/tmp/abs-evil.jpg', sz, format, width, height, model, rate_id, data FROM images WHERE name = 'samples/gravel.jpg'"
mkdir -p z/inner
expect 1 "extract refuses hostile names" "$A" -f evil.mrtdb "${M[@]}" extract -C z/inner
check "hostile name reported" grep -q "refusing hostile name '../evil.jpg'" "$T/err"
check "nothing outside the target" [ ! -e z/evil.jpg.png ] && [ ! -e /tmp/abs-evil.jpg.png ]
check "the others extracted" [ -s z/inner/samples/camera.png ]
expect 1 "export refuses hostile names" "$A" -f evil.mrtdb "${M[@]}" export evil.tar
expect 1 "verify flags hostile names" "$A" -f evil.mrtdb "${M[@]}" verify

# --- export: a temporary file beside OUT, renamed at the end ----------------------
check "export leaves no temporary file" [ -z "$(ls -A | grep -E '^\.out\..*\.tmp-')" ]
expect 0 "export over an existing OUT" "$A" -f "$DB" "${M[@]}" export out.tar
check "replaced OUT still complete" [ "$(tar -tf out.tar | wc -l)" = "$N" ]
expect 2 "export --sqlar never overwrites" "$A" -f "$DB" "${M[@]}" export --sqlar out.sqlar
check "no temporary file after the refusals" [ -z "$(ls -A | grep -E '\.tmp-')" ]

# --- --keep-original -----------------------------------------------------------
DB6=$T/o.mrtdb
expect 0 "add --keep-original" "$A" -f "$DB6" "${M[@]}" -j 2 add --keep-original samples
check "5 originals kept" [ "$(q "$DB6" 'select count(*) from originals')" = 5 ]
mkdir orig
expect 0 "extract --original" "$A" -f "$DB6" extract --original -C orig
for f in samples/*.jpg samples/*.png; do
  check "original $f byte-identical" cmp -s "$f" "orig/$f"
done
"$A" -f "$DB6" cat --original samples/coffee.jpg >coffee.jpg; check "cat --original" cmp -s coffee.jpg samples/coffee.jpg
expect 1 "extract --original without one kept" "$A" -f "$DB" extract --original -C orig mixed/good.png
check "says no original" grep -q 'no original kept' "$T/err"
# An unchanged file added again with --keep-original gets its original.
expect 0 "re-add unchanged with --keep-original" "$A" -f "$DB" "${M[@]}" add --keep-original samples
check "re-add encodes nothing" grep -q '^0 stored, 5 unchanged' "$T/err"
check "re-add kept the originals" [ "$(q "$DB" "select count(*) from originals join images using (id) where name like 'samples/%'")" = 5 ]
check "rm drops the original" sh -c "'$A' -f '$DB6' rm samples/camera.png && [ \"\$(sqlite3 '$DB6' 'select count(*) from originals')\" = 4 ]"
cp "$DB6" evil2.mrtdb
q evil2.mrtdb "PRAGMA ignore_check_constraints = ON; UPDATE images SET name = '../evil-orig.jpg' WHERE name = 'samples/coffee.jpg'"
mkdir -p w/inner
expect 1 "extract --original refuses hostile names" "$A" -f evil2.mrtdb extract --original -C w/inner
check "hostile original not written" [ ! -e w/evil-orig.jpg ]
check "the other originals extracted" cmp -s w/inner/samples/gravel.jpg samples/gravel.jpg
mkdir v; ln -s /tmp v/samples
expect 1 "extract --original refuses a symlinked folder" "$A" -f "$DB6" extract --original samples/gravel.jpg -C v
check "nothing written through the symlink" [ ! -e /tmp/gravel.jpg ]

# --- rm -----------------------------------------------------------------------
expect 0 "rm" "$A" -f "$DB" rm samples/gravel.jpg
check "rm removed row and hash" [ "$(q "$DB" "select count(*) from images where name='samples/gravel.jpg'")/$(q "$DB" 'select count(*) from image_sha256 where id not in (select id from images)')" = 0/0 ]
expect 1 "rm a missing name" "$A" -f "$DB" rm samples/gravel.jpg

# --- the extension on the archive ----------------------------------------------
load_env=(env MRT_MODEL="$T/model.gguf")
[ -n "$ASAN_RT" ] && load_env+=(LD_PRELOAD="$ASAN_RT" ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0)
check "sqlite3 .load mrt decodes the archive" [ "$("${load_env[@]}" sqlite3 "$DB" ".load ${SO%.so}" "select count(*) from images where length(mrt_decode(data)) > 0")" = "$(q "$DB" 'select count(*) from images')" ]

# --- kill -9 in the middle of an add ---------------------------------------------
mkdir many
for i in $(seq 1 60); do python3 "$SRC/tests/archive/mkpng.py" many/p$i.png 192 128 $i; done
DB3=$T/k.mrtdb
"$A" -f "$DB3" "${M[@]}" add many 2>/dev/null & pid=$!
# Kill it as soon as the first batch is committed.
for _ in $(seq 1 400); do
  [ "$(q "$DB3" 'select count(*) from images' 2>/dev/null || echo 0)" -gt 0 ] 2>/dev/null && break
  sleep 0.02
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
K=$(q "$DB3" 'select count(*) from images')
echo "killed after $K of 60"
check "integrity_check ok after kill -9" [ "$(q "$DB3" 'pragma integrity_check')" = ok ]
expect 0 "re-run after kill -9" "$A" -f "$DB3" "${M[@]}" add many
check "re-run encodes only the rest" grep -q "^$((60 - K)) stored, $K unchanged" "$T/err"
check "every image exactly once" [ "$(q "$DB3" 'select count(*), count(distinct name) from images')" = "60|60" ]

# --- -j 2: workers encode, one writer; same bytes as one thread ------------------
DB4=$T/j.mrtdb
expect 0 "add -j 2" "$A" -f "$DB4" "${M[@]}" -j 2 add many samples
check "-j 2 stores the same bitstreams" [ "$(q "$DB4" "select group_concat(name || hex(data)) from (select * from images where name like 'many/%' order by name)")" = "$(q "$DB3" "select group_concat(name || hex(data)) from (select * from images order by name)")" ]
check "-j 2 stores every file once" [ "$(q "$DB4" 'select count(*) from images')" = 65 ]
expect 2 "add without a model is fatal" env MRT_MODEL="$T/missing.gguf" "$A" -f "$T/nomodel.mrtdb" add samples

# --- hostile archives and outputs (issue 19) ----------------------------------------
echo "not a database at all" >"$T/text.mrtdb"
expect 2 "a file that is not a database" "$A" -f "$T/text.mrtdb" ls
check "... says so in one line" grep -qx "mrtarchive: $T/text.mrtdb: cannot read: file is not a database" "$T/err"
head -c 5000 "$DB" >"$T/trunc.mrtdb"
expect 2 "a truncated archive" "$A" -f "$T/trunc.mrtdb" ls
check "... says so" grep -q "trunc.mrtdb: cannot read the archive: .*malformed" "$T/err"
expect 2 "ls > /dev/full" bash -c "\"$A\" -f \"$DB\" ls >/dev/full"
check "... names standard output" grep -q "writing standard output: No space left on device" "$T/err"
expect 2 "--json ls > /dev/full" bash -c "\"$A\" -f \"$DB\" --json ls >/dev/full"
expect 2 "stats > /dev/full" bash -c "\"$A\" -f \"$DB\" stats >/dev/full"
# an archive on read-only media (a tmpfs remounted read-only; needs root)
mkdir "$T/ro"
if mount -t tmpfs -o size=16m tmpfs "$T/ro" 2>/dev/null; then
  cp "$DB" "$T/ro/a.mrtdb" && mount -o remount,ro "$T/ro"
  for c in ls stats verify "info samples/camera.png"; do
    expect 0 "read-only media: $c" "$A" -f "$T/ro/a.mrtdb" "${M[@]}" $c
  done
  expect 0 "read-only media: cat" "$A" -f "$T/ro/a.mrtdb" "${M[@]}" cat samples/camera.png
  check "... gives the PNG" cmp -s "$T/out" <("$A" -f "$DB" "${M[@]}" cat samples/camera.png)
  mkdir "$T/rox"
  expect 0 "read-only media: extract" "$A" -f "$T/ro/a.mrtdb" "${M[@]}" extract -C "$T/rox"
  n_images=$(q "$DB" 'select count(*) from names')
  check "... every image" [ "$(find "$T/rox" -type f | wc -l)" = "$n_images" ]
  expect 0 "read-only media: export" "$A" -f "$T/ro/a.mrtdb" "${M[@]}" export "$T/ro.tar"
  expect 2 "read-only media: rm is refused" "$A" -f "$T/ro/a.mrtdb" rm samples/camera.png
  check "... with the reason" grep -q "cannot change an archive on read-only media" "$T/err"
  umount "$T/ro"
else
  echo "skip read-only media: mount is not permitted here (not root?)"
fi
# export into a device node, a FIFO and through a symbolic link: written
# into or through, never replaced by a file
n_images=$(q "$DB" 'select count(*) from names')
mknod -m 666 "$T/null.tar" c 1 3 2>/dev/null && {
  expect 0 "export into a device node" "$A" -f "$DB" "${M[@]}" export "$T/null.tar"
  check "... still a device" [ -c "$T/null.tar" ]
}
mkfifo "$T/fifo.tar"
cat "$T/fifo.tar" >"$T/from-fifo.tar" & reader=$!
written=0
for _ in $(seq 100); do
  "$A" -q -f "$DB" "${M[@]}" export "$T/fifo.tar" 2>/dev/null && { written=1; break; }
  sleep 0.1
done
(( written )) || kill $reader 2>/dev/null
wait $reader
check "export into a FIFO: the reader gets the tarball" [ "$(tar -tf "$T/from-fifo.tar" | wc -l)" = "$n_images" ]
check "... the FIFO is still one" [ -p "$T/fifo.tar" ]
echo old >"$T/exported.tar"
ln -s exported.tar "$T/link.tar"
expect 0 "export through a symbolic link" "$A" -f "$DB" "${M[@]}" export "$T/link.tar"
check "... the link stays, its target is the tarball" [ -L "$T/link.tar" ] && [ "$(tar -tf "$T/exported.tar" | wc -l)" = "$n_images" ]
# two names that extract to one file: both kept, the second renamed
mkdir -p "$T/col/in"
cp "$SRC/samples/camera.png" "$T/col/in/p.jpg.png"
cp "$SRC/samples/coffee.jpg" "$T/col/in/p.jpg"
expect 0 "add p.jpg and p.jpg.png" "$A" -q -f "$T/col.mrtdb" "${M[@]}" add "$T/col/in"
mkdir "$T/col/out"
expect 0 "extract both" "$A" -f "$T/col.mrtdb" "${M[@]}" extract -C "$T/col/out"
check "... to two files" [ -f "$T/col/out/in/p.jpg.png" ] && [ -f "$T/col/out/in/p.jpg~2.png" ]
check "... saying which was renamed" grep -q "extracted in/p.jpg as in/p.jpg~2.png (in/p.jpg.png is another image's name)" "$T/err"
check "... p.jpg.png is the PNG stored under that name" cmp -s "$T/col/out/in/p.jpg.png" <("$A" -f "$T/col.mrtdb" "${M[@]}" cat in/p.jpg.png)
expect 0 "export both" "$A" -f "$T/col.mrtdb" "${M[@]}" export "$T/col.tar"
check "... as two distinct entries" [ "$(tar -tf "$T/col.tar" | sort | tr '\n' ' ')" = "in/p.jpg.png in/p.jpg~2.png " ]
# names with control characters or invalid UTF-8: refused at add, and no
# raw control byte reaches the terminal
mkdir -p "$T/ctl"
for n in $'esc\e[31mred.png' $'c1\xc2\x9bx.png' $'bad\xffutf.png' $'cr\rx.png'; do
  cp "$SRC/samples/camera.png" "$T/ctl/$n"
done
expect 1 "add of names with control characters" "$A" -f "$T/ctl.mrtdb" "${M[@]}" add "$T/ctl"
check "... each refused" [ "$(grep -c 'is not UTF-8, or has a control character' "$T/err")" = 4 ]
check "... escaped in the messages" grep -qF 'esc\x1B[31mred.png' "$T/err"
check "... no raw control byte on stderr" bash -c "! LC_ALL=C grep -q \$'[\x01-\x08\x0b-\x1f\x7f]\|\xc2\x9b\|\xff' '$T/err'"
# a name stored by an older version with invalid UTF-8 and an escape: --json
# stays valid JSON, and verify's message shows it escaped
cp "$DB" "$T/legacy.mrtdb"
q "$T/legacy.mrtdb" "update images set name = cast(x'6c6567616379ff1b2e706e67' as text) where name = 'samples/camera.png'"
expect 0 "--json ls of a legacy name" "$A" -f "$T/legacy.mrtdb" --json ls
check "... is valid JSON" [ "$(q :memory: "select json_valid(readfile('$T/out'))")" = 1 ]
expect 1 "verify flags the legacy name" "$A" -f "$T/legacy.mrtdb" "${M[@]}" verify
check "... escaped" grep -qF 'legacy\xFF\x1B.png' "$T/err"
# further names of one photo (schema version 2): every name listed and
# extracted; rm of the image's own name passes it to the other; a changed
# file under one name leaves the others the old photo
mkdir -p "$T/al/in"
cp "$SRC/samples/camera.png" "$T/al/in/a.png"; cp "$SRC/samples/camera.png" "$T/al/in/b.png"
cp "$SRC/samples/camera.png" "$T/al/in/c.png"
expect 0 "add three copies" "$A" -f "$T/al.mrtdb" "${M[@]}" -j 2 add "$T/al/in"
check "... one image, three names" [ "$(q "$T/al.mrtdb" 'select count(*) from images')|$("$A" -f "$T/al.mrtdb" ls | tr '\n' ' ')" = "1|in/a.png in/b.png in/c.png " ]
mkdir "$T/al/out"
expect 0 "extract three names" "$A" -f "$T/al.mrtdb" "${M[@]}" extract -C "$T/al/out"
check "... three equal files" cmp -s "$T/al/out/in/a.png" "$T/al/out/in/c.png"
expect 0 "rm the image's own name" "$A" -f "$T/al.mrtdb" rm in/a.png
check "... the photo stays under the others" [ "$("$A" -f "$T/al.mrtdb" ls | tr '\n' ' ')" = "in/b.png in/c.png " ] && [ "$(q "$T/al.mrtdb" 'select count(*) from images')" = 1 ]
cp "$SRC/samples/coffee.jpg" "$T/al/in/b.png"; rm "$T/al/in/a.png"
expect 0 "b.png changed" "$A" -f "$T/al.mrtdb" "${M[@]}" add "$T/al/in"
check "... c.png still the old photo" [ "$(q "$T/al.mrtdb" "select i.width from names n join images i using (id) where n.name = 'in/c.png'")" = 512 ] && [ "$(q "$T/al.mrtdb" "select i.width from names n join images i using (id) where n.name = 'in/b.png'")" = 600 ]
expect 0 "rm the last names" "$A" -f "$T/al.mrtdb" rm in/b.png in/c.png
check "... nothing left" [ "$(q "$T/al.mrtdb" 'select (select count(*) from images) + (select count(*) from aliases)')" = 0 ]
# a version-1 archive: read as it is, migrated by the first add
q "$T/v1.mrtdb" <"$SRC/tests/archive/fixtures/schema-v1.sql"
expect 0 "add into a version-1 archive" "$A" -f "$T/v1.mrtdb" "${M[@]}" add "$T/al/in"
check "... migrated to version 2" [ "$(q "$T/v1.mrtdb" 'pragma user_version')" = 2 ] && grep -q "migrated to schema version 2" "$T/err"
sqlite3 "$T/v1r.mrtdb" <"$SRC/tests/archive/fixtures/schema-v1.sql"
q "$T/v1r.mrtdb" "insert into images(name, sz, format, width, height, model, rate_id, data) select name, sz, format, width, height, model, rate_id, data from images where 0"
expect 0 "ls of a version-1 archive" "$A" -f "$T/v1r.mrtdb" ls
check "... leaves it version 1" [ "$(q "$T/v1r.mrtdb" 'pragma user_version')" = 1 ]
# two adds at once into a new archive both succeed
for t in 1 2 3; do
  rm -f "$T/new.mrtdb"*
  "$A" -q -f "$T/new.mrtdb" "${M[@]}" add samples/camera.png 2>"$T/err1" & p1=$!
  "$A" -q -f "$T/new.mrtdb" "${M[@]}" add samples/coffee.jpg 2>"$T/err2" & p2=$!
  wait $p1; r1=$?; wait $p2; r2=$?
  check "two adds at once into a new archive (try $t)" [ "$r1$r2" = 00 ] && [ "$(q "$T/new.mrtdb" 'select count(*) from images')" = 2 ] || cat "$T/err1" "$T/err2"
done

# --- backup: a checked copy, safe while the archive is in use (issue 22) ---------------
expect 0 "backup" "$A" -f "$DB" "${M[@]}" backup "$T/bk.mrtdb"
check "... says what it checked" grep -q "bk.mrtdb: [0-9]* images, integrity_check ok" "$T/err"
check "... integrity_check ok" [ "$(q "$T/bk.mrtdb" 'pragma integrity_check')" = ok ]
check "... the same names" [ "$("$A" -f "$T/bk.mrtdb" ls)" = "$("$A" -f "$DB" ls)" ]
check "... the same bitstreams" [ "$(q "$T/bk.mrtdb" 'select id, hex(data) from images order by id')" = \
  "$(q "$DB" 'select id, hex(data) from images order by id')" ]
expect 2 "backup over an existing file is refused" "$A" -f "$DB" backup "$T/bk.mrtdb"
check "... saying so" grep -q "exists: a backup never replaces a file" "$T/err"
expect 2 "backup into a missing folder" "$A" -f "$DB" backup "$T/no/such/bk.mrtdb"
check "... leaves nothing" [ ! -e "$T/no" ]
# while an add writes: the copy is one snapshot, checked and complete
cp "$DB" "$T/busy.mrtdb"
"$A" -q -f "$T/busy.mrtdb" "${M[@]}" add many >/dev/null 2>&1 &
busy=$!
sleep 0.5
expect 0 "backup during an add" "$A" -f "$T/busy.mrtdb" "${M[@]}" backup "$T/busy-bk.mrtdb"
wait $busy
check "... integrity_check ok" [ "$(q "$T/busy-bk.mrtdb" 'pragma integrity_check')" = ok ]
check "... no temporary file left" [ -z "$(ls "$T" | grep 'bk.mrtdb.tmp')" ]

# --- the progress line on a terminal (issue 21) ------------------------------------
# script(1) (util-linux) gives the command a pseudo-terminal: the line is
# rewritten in place (\r, then erase to the end of line) with files done of
# total, the rates, bytes stored and an ETA, and the per-file lines are left
# out; in a pipe (the runs above) there is no \r and the per-file lines stay;
# --quiet silences both.
if command -v script >/dev/null; then
  rm -rf prog && mkdir prog && cp samples/*.png samples/*.jpg prog/
  on_tty() { script -qfec "$*" /dev/null >"$T/tty" 2>&1 </dev/null; }
  on_tty "'$A' -f '$T/p.mrtdb' --model '$T/model.gguf' add prog"
  check "add on a terminal: a progress line" grep -q $'\radd: 5/5 files, .* stored' "$T/tty"
  check "... erased to the end of the line" grep -q $'\e\\[K' "$T/tty"
  check "... files counted before the start" grep -q $'\radd: 0/5 files' "$T/tty"
  check "... no per-file lines" bash -c "! grep -q 'stored prog/' '$T/tty'"
  check "... the summary still printed" grep -q '5 stored, 0 unchanged' "$T/tty"
  check "... and the images stored" [ "$(q "$T/p.mrtdb" 'select count(*) from images')" = 5 ]
  on_tty "'$A' -f '$T/p.mrtdb' --model '$T/model.gguf' export '$T/p.tar'"
  check "export on a terminal: a progress line" grep -q $'\rexport: 5/5 images, .* written' "$T/tty"
  check "... no per-file lines" bash -c "! grep -q '^exported' '$T/tty'"
  mkdir -p pex
  on_tty "'$A' -f '$T/p.mrtdb' --model '$T/model.gguf' extract -C '$T/pex'"
  check "extract on a terminal: a progress line" grep -q $'\rextract: 5/5 images' "$T/tty"
  check "... and the files written" [ "$(ls pex/prog | wc -l)" = 5 ]
  rm -f "$T/p.mrtdb"*
  on_tty "'$A' -q -f '$T/p.mrtdb' --model '$T/model.gguf' add prog"
  check "--quiet on a terminal: nothing" [ ! -s "$T/tty" ]
  "$A" -f "$T/p2.mrtdb" "${M[@]}" add prog >/dev/null 2>"$T/err"
  check "in a pipe: no progress line" bash -c "! grep -q $'\r' '$T/err'"
  check "... the per-file lines" [ "$(grep -c '^stored prog/' "$T/err")" = 5 ]
else
  echo "skip progress line: script(1) is not installed"
fi

# --- faults: the disk fills up ------------------------------------------------------
# an add into a small file system that fills mid-ingest stops with one line and
# exit 2, leaves a consistent archive whose committed images are intact, and a
# re-run after space is freed completes; an export that runs out of space leaves
# no partial output (tmpfs mounts made here; needs root)
mkdir "$T/full" "$T/small"
if mount -t tmpfs -o size=2m tmpfs "$T/full" 2>/dev/null; then
  expect 2 "add into a file system that fills up" "$A" -q -f "$T/full/f.mrtdb" "${M[@]}" --keep-original add many
  check "... one line, naming the cause" [ "$(wc -l <"$T/err")" = 1 ] && grep -q "the add stopped: database or disk is full" "$T/err"
  check "... integrity_check ok" [ "$(q "$T/full/f.mrtdb" 'pragma integrity_check')" = ok ]
  K=$(q "$T/full/f.mrtdb" 'select count(*) from images')
  check "... some batches committed before ($K of 60)" [ "$K" -gt 0 ] && [ "$K" -lt 60 ]
  expect 0 "... every image committed is intact ($K)" "$A" -q -f "$T/full/f.mrtdb" "${M[@]}" verify
  mount -o remount,size=64m "$T/full"
  expect 0 "... a re-run after space is freed" "$A" -q -f "$T/full/f.mrtdb" "${M[@]}" --keep-original add many
  check "... completes" [ "$(q "$T/full/f.mrtdb" 'select count(*) from images')" = 60 ]
  if mount -t tmpfs -o size=64k tmpfs "$T/small" 2>/dev/null; then
    expect 2 "export into a file system too small" "$A" -f "$T/full/f.mrtdb" "${M[@]}" export "$T/small/out.tar"
    check "... leaves no output and no temporary file" [ -z "$(ls -A "$T/small")" ]
    umount "$T/small"
  fi
  umount "$T/full"
else
  echo "skip disk full: mount is not permitted here (not root?)"
fi

echo "$fails failure(s)"
[ "$fails" = 0 ]
