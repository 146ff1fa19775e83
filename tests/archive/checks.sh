# The archive tests' checks, sourced by each test_*.sh after it has made and
# entered its folder $T: one line per check ("ok   WHAT" or "FAIL WHAT"), the
# failures counted in $fails, which the test's last lines report.
fails=0
ok()   { echo "ok   $*"; }
bad()  { echo "FAIL $*"; fails=$((fails + 1)); }
# check WHAT CMD...: CMD succeeds
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
# expect RC WHAT CMD...: runs CMD (stdout in $T/out, stderr in $T/err), checks its exit status
expect() { local want=$1 what=$2; shift 2; "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ "$rc" = "$want" ]; then ok "$what"; else bad "$what (exit $rc, wanted $want)"; cat "$T/err"; fi; }
q() { sqlite3 "$@"; }
# contents ARCHIVE: what an archive holds, to compare two: every name with
# its mtime, the SHA-256 of its bitstream and of its kept original ('-':
# none), the ingest errors' names and messages, the image count
contents() {
  python3 - "$1" <<'PY'
import hashlib, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
h = lambda b: hashlib.sha256(b).hexdigest() if b is not None else '-'
for name, mtime, data, orig in db.execute(
        "SELECT n.name, n.mtime, i.data, o.data FROM names n JOIN images i ON i.id = n.id "
        "LEFT JOIN originals o ON o.id = i.id ORDER BY n.name"):
    print(name, mtime, h(data), h(orig))
for name, message in db.execute("SELECT name, message FROM ingest_errors ORDER BY name"):
    print('error', name, message)
print('images', db.execute("SELECT count(*) FROM images").fetchone()[0])
PY
}
