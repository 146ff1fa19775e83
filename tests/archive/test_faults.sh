#!/usr/bin/env bash
# mrtarchive under faults (ctest archive_faults), the way SQLite tests itself:
#   - I/O errors: for every N, the N-th write or sync of the archive's files
#     fails once (tests/archive/faultio.c, an LD_PRELOAD shim below SQLite)
#     during an `add` and during an `rm`: the archive is never corrupt, what
#     was committed before is never lost, and a re-run without faults
#     completes;
#   - kill -9 at random moments of `add`, `rm` and a schema migration, 100
#     times in all: nothing committed is lost, integrity_check is ok.
#   test_faults.sh MRTARCHIVE MRT_CLI FAULTIO_SO SOURCE_DIR
set -u
A=$1 MRT=$2 SHIM=$3 SRC=$4
export OMP_WAIT_POLICY=PASSIVE MRT_THREADS=1
command -v sqlite3 >/dev/null || { echo "sqlite3 not installed: skipped"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/mrtarchive-faults.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T"
source "$SRC/tests/archive/checks.sh"

"$MRT" init-model model.gguf --seed 1 --quiet >/dev/null 2>&1 || { echo "cannot make a model"; exit 1; }
M=(--model "$T/model.gguf")
mkdir base more many
for i in 1 2; do python3 "$SRC/tests/archive/mkpng.py" base/b$i.png 96 64 $i; done
for i in 3 4 5; do python3 "$SRC/tests/archive/mkpng.py" more/m$i.png 96 64 $i; done
for i in $(seq 1 40); do python3 "$SRC/tests/archive/mkpng.py" many/p$i.png 96 64 $((i + 10)); done
"$A" -q -f base.mrtdb "${M[@]}" add base || { echo "cannot make the base archive"; exit 1; }
committed() { q "$1" "select group_concat(name || ':' || hex(data), ' ') from (select name, data from names join images using (id) where name like 'base/%' order by name)"; }
BASE=$(committed base.mrtdb)

# faulty RUN...: runs mrtarchive with the N-th counted call failing
faulty() { local n=$1; shift; FAULTIO_MATCH=.mrtdb FAULTIO_FAIL_AT=$n LD_PRELOAD=$SHIM "$A" "$@"; }

# --- I/O errors during an add ------------------------------------------------------
cp base.mrtdb t.mrtdb
FAULTIO_MATCH=.mrtdb FAULTIO_REPORT=$T/count LD_PRELOAD=$SHIM "$A" -q -f t.mrtdb "${M[@]}" add more
calls=$(cat count)
check "the shim counts the archive's writes and syncs ($calls during an add)" [ "$calls" -gt 5 ]
bad_runs=0
for n in $(seq 1 "$calls"); do
  rm -f t.mrtdb*; cp base.mrtdb t.mrtdb
  faulty "$n" -q -f t.mrtdb "${M[@]}" add more 2>err; rc=$?
  why=""
  (( rc >= 128 )) && why="crashed ($rc)"
  [ "$(q t.mrtdb 'pragma integrity_check' 2>&1)" = ok ] || why="$why integrity"
  [ "$(committed t.mrtdb)" = "$BASE" ] || why="$why lost-committed"
  "$A" -q -f t.mrtdb "${M[@]}" add more 2>>err || why="$why re-run-failed"
  [ "$(q t.mrtdb 'select count(*) from images')" = 5 ] || why="$why incomplete"
  [ -n "$why" ] && { bad "add with write/sync $n of $calls failing:$why: $(head -c 300 err)"; bad_runs=$((bad_runs + 1)); }
done
check "add: every one of $calls I/O errors left a consistent archive, lost nothing, and a re-run completed" [ "$bad_runs" = 0 ]

# --- I/O errors during an rm ---------------------------------------------------------
rm -f t.mrtdb*; cp base.mrtdb t.mrtdb
FAULTIO_MATCH=.mrtdb FAULTIO_REPORT=$T/count LD_PRELOAD=$SHIM "$A" -q -f t.mrtdb rm base/b1.png
calls=$(cat count)
bad_runs=0
B2=$(q base.mrtdb "select hex(data) from images where name = 'base/b2.png'")
for n in $(seq 1 "$calls"); do
  rm -f t.mrtdb*; cp base.mrtdb t.mrtdb
  faulty "$n" -q -f t.mrtdb rm base/b1.png 2>err; rc=$?
  why=""
  (( rc >= 128 )) && why="crashed ($rc)"
  [ "$(q t.mrtdb 'pragma integrity_check' 2>&1)" = ok ] || why="$why integrity"
  [ "$(q t.mrtdb "select hex(data) from images where name = 'base/b2.png'")" = "$B2" ] || why="$why lost-b2"
  left=$(q t.mrtdb "select count(*) from images where name = 'base/b1.png'")
  (( rc == 0 )) && [ "$left" != 0 ] && why="$why exit-0-but-not-removed"
  [ -n "$why" ] && { bad "rm with write/sync $n of $calls failing:$why: $(head -c 300 err)"; bad_runs=$((bad_runs + 1)); }
done
check "rm: every one of $calls I/O errors left a consistent archive and lost nothing else" [ "$bad_runs" = 0 ]

# --- kill -9 at random moments, 100 times --------------------------------------------
RANDOM=7 # the same sequence of moments every run
now_ms() { date +%s%3N; }
# killed_at_random MS CMD...: runs CMD and kill -9s it after a random time
# below MS milliseconds; succeeds when the kill landed (CMD was running)
killed_at_random() {
  local ms=$1; shift
  "$@" 2>/dev/null & local pid=$!
  local t=$((RANDOM % ms))
  sleep "$((t / 1000)).$(printf '%03d' $((t % 1000)))"
  kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
  [ $? = 137 ]
}
# how long CMD takes, in ms (at least 20)
duration() { local t0; t0=$(now_ms); "$@" >/dev/null 2>&1; local d=$(($(now_ms) - t0)); echo $((d < 20 ? 20 : d)); }
broken=0 lost=0
K=k.mrtdb
rm -f "$K"*
D=$(duration "$A" -q -f "$K" "${M[@]}" add many)
rm -f "$K"*
landed=0 prev=0
for i in $(seq 1 200); do # add: what is committed only ever grows
  (( landed >= 40 )) && break
  killed_at_random "$D" "$A" -q -f "$K" "${M[@]}" add many && landed=$((landed + 1))
  [ -f "$K" ] || continue
  [ "$(q "$K" 'pragma integrity_check' 2>&1)" = ok ] || broken=$((broken + 1))
  now=$(q "$K" 'select count(*) from images')
  (( now < prev )) && lost=$((lost + 1))
  prev=$now
  if (( now == 40 )); then rm -f "$K"*; prev=0; fi # again from nothing
done
add_landed=$landed
"$A" -q -f "$K" "${M[@]}" add many
check "add killed $add_landed times at random: never corrupt ($broken), never lost a committed image ($lost), then complete" \
  [ "$broken$lost" = 00 ] && [ "$add_landed" = 40 ] && [ "$(q "$K" 'select count(*) from images')" = 40 ]
names=$(for j in $(seq 1 20); do echo many/p$j.png; done)
cp "$K" r.mrtdb
D=$(duration "$A" -q -f r.mrtdb rm $names)
landed=0
for i in $(seq 1 200); do # rm: all of it or none of it
  (( landed >= 30 )) && break
  cp "$K" r.mrtdb; rm -f r.mrtdb-wal r.mrtdb-shm
  killed_at_random "$D" "$A" -q -f r.mrtdb rm $names && landed=$((landed + 1))
  [ "$(q r.mrtdb 'pragma integrity_check' 2>&1)" = ok ] || broken=$((broken + 1))
  after=$(q r.mrtdb 'select count(*) from images')
  [ "$after" = 40 ] || [ "$after" = 20 ] || lost=$((lost + 1))
done
check "rm killed $landed times at random: all or nothing ($lost), never corrupt ($broken)" \
  [ "$broken$lost" = 00 ] && [ "$landed" = 30 ]
rm_landed=$landed
# a schema migration (and an add): a version-1 archive holding the 40 images
q v1.mrtdb <"$SRC/tests/archive/fixtures/schema-v1.sql"
q v1.mrtdb "attach '$K' as k; insert into images select * from k.images; insert into image_sha256 select * from k.image_sha256"
cp v1.mrtdb m.mrtdb
D=$(duration "$A" -q -f m.mrtdb "${M[@]}" add more)
landed=0
for i in $(seq 1 200); do
  (( landed >= 30 )) && break
  cp v1.mrtdb m.mrtdb; rm -f m.mrtdb-wal m.mrtdb-shm
  killed_at_random "$D" "$A" -q -f m.mrtdb "${M[@]}" add more && landed=$((landed + 1))
  [ "$(q m.mrtdb 'pragma integrity_check' 2>&1)" = ok ] || broken=$((broken + 1))
  v=$(q m.mrtdb 'pragma user_version')
  n=$(q m.mrtdb "select count(*) from images where name like 'many/%'")
  { [ "$v" = 1 ] || [ "$v" = 2 ]; } && [ "$n" = 40 ] || lost=$((lost + 1))
done
check "migration killed $landed times at random: version 1 or 2, every image there ($lost), never corrupt ($broken)" \
  [ "$broken$lost" = 00 ] && [ "$landed" = 30 ]
echo "kill -9 landed $((add_landed + rm_landed + landed)) times"

echo "$fails failure(s)"
[ "$fails" = 0 ]
