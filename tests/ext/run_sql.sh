#!/usr/bin/env bash
# The SQLite extension through the real sqlite3 CLI, as a user runs it.
#
#   run_sql.sh MODE SQLITE3 MRT_SO MRT_CLI SOURCE_DIR [ASAN_RUNTIME]
#
# MODE:
#   scripts    every tests/ext/*.sql except errors.sql and rates.sql, with
#              .bail on; stdout must equal NAME.expected, stderr be empty
#   errors     errors.sql (.bail off): every statement but the setup fails;
#              each stderr line must match the extended regex on the same
#              line of errors.expected; plus the errors that need another
#              environment (no model, a missing MRT_MODEL, a length limit)
#   rates      rates.sql in a directory of three rate points, and rate errors
#   functions  PRAGMA function_list against the table in ext/README.md, and
#              a section in ext/README.md for every function
#   examples   sql/schema.sql (twice: it is idempotent) and sql/examples.sql
#   oneliners  README's "Done when" commands, from the source tree
#
# Work happens in a temporary directory holding `samples` (a link to the
# source tree's) and a seeded random model that MRT_MODEL names. With
# ASAN_RUNTIME (a sanitized build) that runtime is preloaded into sqlite3.
# Exit status: 0 pass, 1 fail, 77 skipped.
set -uo pipefail
mode=$1
sqlite3=$2
so=$3
mrt=$4
src=$5
asan=${6:-}
here=$src/tests/ext
load=${so%.so} # `.load build/ext/mrt`, as the docs say

if [[ -n $asan ]]; then
  # The sqlite3 binary is not ours: its leaks are not our business, and
  # ASan must not insist on being first in a program built without it.
  export LD_PRELOAD=$asan
  export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0:verify_asan_link_order=0
fi

work=$(mktemp -d /tmp/mrt-ext-XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
ln -s "$src/samples" samples
mkdir models other
"$mrt" init-model models/random.gguf --seed 1 --quiet || exit 1
"$mrt" init-model other/seed2.gguf --seed 2 --quiet || exit 1
export MRT_MODEL=$work/models/random.gguf

pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() {
  echo "FAIL: $*"
  fail=$((fail + 1))
}
sql() { "$sqlite3" -batch -cmd ".load $load" "$@"; }

# expect_error REGEX ARGS...: sqlite3 fails and its stderr matches REGEX.
expect_error() {
  local pattern=$1
  shift
  if sql "$@" >out.txt 2>err.txt; then
    bad "succeeded, wanted an error matching '$pattern': sqlite3 $*"
  elif grep -Eq -- "$pattern" err.txt; then
    ok
  else
    bad "sqlite3 $*: stderr '$(cat err.txt)' does not match '$pattern'"
  fi
}

# expect_output EXPECTED ARGS...: sqlite3 succeeds and prints exactly EXPECTED.
expect_output() {
  local want=$1
  shift
  local got
  if ! got=$(sql "$@" 2>err.txt); then
    bad "sqlite3 $*: $(cat err.txt)"
  elif [[ $got != "$want" ]]; then
    bad "sqlite3 $*: got '$got', want '$want'"
  else
    ok
  fi
}

case $mode in
scripts)
  for script in "$here"/*.sql; do
    name=$(basename "$script" .sql)
    [[ $name == errors || $name == rates ]] && continue
    sql :memory: <"$script" >"$name.out" 2>"$name.err"
    rc=$?
    if [[ $rc -ne 0 || -s $name.err ]]; then
      bad "$name.sql: exit $rc: $(cat "$name.err")"
    elif ! diff -u "$here/$name.expected" "$name.out"; then
      bad "$name.sql: output differs from $name.expected (diff above)"
    else
      ok
    fi
  done
  ;;

errors)
  sql :memory: <"$here/errors.sql" >errors.out 2>errors.err
  mapfile -t want <"$here/errors.expected"
  # (a parse error is followed by the statement and a caret, indented: skipped)
  mapfile -t got < <(grep -v '^  ' errors.err)
  [[ -s errors.out ]] && bad "errors.sql printed to stdout: $(cat errors.out)"
  if [[ ${#got[@]} -ne ${#want[@]} ]]; then
    bad "errors.sql: ${#got[@]} error lines, want ${#want[@]}:"
    cat errors.err
  fi
  for i in "${!want[@]}"; do
    if [[ ${got[$i]-} =~ ${want[$i]} ]]; then ok; else bad "errors.sql line $((i + 1)): '${got[$i]-}' does not match '${want[$i]}'"; fi
  done
  # MRT_MODEL naming a missing file: an error naming it, not another model.
  MRT_MODEL=$work/missing.gguf expect_error \
    "mrt_encode: model from MRT_MODEL: $work/missing.gguf: No such file or directory" \
    :memory: "SELECT mrt_encode(readfile('samples/coffee.jpg'))"
  MRT_MODEL=$work/missing.gguf expect_output '1' :memory: \
    "SELECT json_extract(mrt_debug(), '\$.model') IS NULL AND json_extract(mrt_debug(), '\$.model_error') LIKE '%missing.gguf%'"
  # BLIS_ARCH_TYPE set and mrt_debug() the first call into BLIS: the kernel
  # family it names (BLIS used to abort the process here). 25 is generic.
  BLIS_ARCH_TYPE=25 expect_output 'generic' :memory: \
    "SELECT json_extract(mrt_debug(), '\$.blis.kernels')"
  # Unset, libmrt picks the AVX-512 kernels on an AMD CPU that has them,
  # where BLIS alone would run its generic ones (gemm.c, "Kernel choice").
  flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
  if grep -q -m1 'AuthenticAMD' /proc/cpuinfo && [[ $flags == *" avx512f "* &&
     $flags == *" avx512dq "* && $flags == *" avx512bw "* && $flags == *" avx512vl "* ]]; then
    got=$(unset BLIS_ARCH_TYPE; sql :memory: "SELECT json_extract(mrt_debug(), '\$.blis.kernels')" 2>&1)
    [[ $got == skx ]] && ok || bad "kernels with BLIS_ARCH_TYPE unset on an AVX-512 AMD CPU: '$got', want 'skx'"
  fi
  # No model at all: only testable while none is installed or shipped.
  if [[ ! -f $src/models/default.gguf && ! -f /usr/local/share/mrt/models/default.gguf && ! -f /usr/share/mrt/models/default.gguf ]]; then
    MRT_MODEL= expect_error "mrt_encode: no model: set MRT_MODEL or SELECT mrt_model\('/path/model.gguf'\)" \
      :memory: "SELECT mrt_encode(readfile('samples/coffee.jpg'))"
    # a damaged bitstream is reported as such even without a model
    MRT_MODEL= expect_error "mrt_decode: bad magic" :memory: "SELECT mrt_decode(x'00')"
  fi
  # A decoded PNG over the connection's length limit (the bitstream is not).
  expect_error 'mrt_decode: the result is [0-9]+ bytes, over SQLITE_LIMIT_LENGTH \(10000\) \(18\)' \
    :memory: "CREATE TABLE t AS SELECT mrt_encode(readfile('samples/gravel.jpg')) AS b" \
    ".limit length 10000" "SELECT mrt_decode(b) FROM t"
  ;;

rates)
  # Three rate points and the default as a link to the middle one.
  mkdir rates
  "$mrt" init-model rates/mrt-0.005.gguf --seed 5 --rate-id 1 --quiet &&
    "$mrt" init-model rates/mrt-0.01.gguf --seed 6 --rate-id 2 --quiet &&
    "$mrt" init-model rates/mrt-0.02.gguf --seed 7 --rate-id 3 --quiet || exit 1
  ln -s mrt-0.01.gguf rates/default.gguf
  mkdir derived
  "$mrt" derive-rate-point rates/mrt-0.02.gguf derived/mrt-half.gguf --scale 0.5 --rate-id 4 \
    --quiet || exit 1
  MRT_MODEL=$work/rates/default.gguf sql :memory: <"$here/rates.sql" >rates.out 2>rates.err
  rc=$?
  if [[ $rc -ne 0 || -s rates.err ]]; then
    bad "rates.sql: exit $rc: $(cat rates.err)"
  elif ! diff -u "$here/rates.expected" rates.out; then
    bad "rates.sql: output differs from rates.expected (diff above)"
  else
    ok
  fi
  # One model only: asking for another rate is an error listing what there is.
  expect_error "mrt_encode: rate 'high' needs rate points with 3 different rate ids, found 1; rate points beside $work/models/random.gguf: 'random' \(rate id 0\)" \
    :memory: "SELECT mrt_encode(readfile('samples/coffee.jpg'), 'high')"
  expect_error "mrt_encode: no model for rate 7; rate points beside .*: 'random' \(rate id 0\)" \
    :memory: "SELECT mrt_encode(readfile('samples/coffee.jpg'), 7)"
  expect_error "mrt_encode: no rate point named 'medium-ish'" \
    :memory: "SELECT mrt_encode(readfile('samples/coffee.jpg'), 'medium-ish')"
  expect_error "mrt_encode: no rate point named 0.05" \
    :memory: "SELECT mrt_encode(readfile('samples/coffee.jpg'), 0.05)"
  expect_error "mrt_encode: rate ids are 0..255" \
    :memory: "SELECT mrt_encode(readfile('samples/coffee.jpg'), -1)"
  # Two files claiming one rate id with different weights: ambiguous.
  "$mrt" init-model rates/mrt-other.gguf --seed 8 --rate-id 2 --quiet || exit 1
  MRT_MODEL=$work/rates/mrt-0.005.gguf expect_error \
    "mrt_encode: rate 2 is ambiguous: '0.01' and 'other' both have rate id 2" \
    :memory: "SELECT mrt_encode(readfile('samples/coffee.jpg'), 2)"
  # A broken file among the rate points is named, never skipped.
  echo "not a model" >rates/mrt-broken.gguf
  MRT_MODEL=$work/rates/mrt-0.005.gguf expect_error "mrt_encode: rate point 'broken': " \
    :memory: "SELECT mrt_encode(readfile('samples/coffee.jpg'), 'high')"
  ;;

functions)
  # The documented table, in the section "## Functions and their flags":
  #   | `name` | narg, narg | FLAG, FLAG | why |
  readme=$src/ext/README.md
  # (plain POSIX awk: Debian's default is mawk)
  awk -F'|' '/^#/ { in_table = ($0 ~ /^## Functions and their flags/) }
    in_table && /^\| `mrt_[a-z_]+` \|/ {
      name = $2; gsub(/[ `]/, "", name)
      n = split($4, raw, ","); m = 0
      for (i = 1; i <= n; i++) { t = raw[i]; gsub(/[^A-Z]/, "", t); if (t != "") f[++m] = t }
      for (i = 2; i <= m; i++) for (j = i; j > 1 && f[j - 1] > f[j]; j--) { t = f[j]; f[j] = f[j - 1]; f[j - 1] = t }
      fl = ""; for (i = 1; i <= m; i++) fl = fl (i > 1 ? " " : "") f[i]
      k = split($3, args, ",")
      for (i = 1; i <= k; i++) { a = args[i]; gsub(/ /, "", a); print name " " a " " fl }
    }' "$readme" | sed 's/ $//' | sort >documented.txt
  sql :memory: "SELECT rtrim(name || ' ' || narg || ' ' || trim(
        (CASE WHEN flags & 2048 THEN 'DETERMINISTIC ' ELSE '' END) ||
        (CASE WHEN flags & 524288 THEN 'DIRECTONLY ' ELSE '' END) ||
        (CASE WHEN flags & 2097152 THEN 'INNOCUOUS ' ELSE '' END) ||
        (CASE WHEN flags & ~(2048 | 524288 | 2097152) THEN 'OTHER:' || flags ELSE '' END)))
      FROM pragma_function_list WHERE name GLOB 'mrt_*' AND type = 's' AND enc = 'utf8'" |
    sort >registered.txt
  if [[ ! -s documented.txt ]]; then
    bad "no function table found in $readme"
  elif diff -u documented.txt registered.txt; then
    ok
  else
    bad "ext/README.md's function table (-) differs from PRAGMA function_list (+)"
  fi
  n=$(sql :memory: "SELECT count(*) FROM pragma_function_list WHERE name GLOB 'mrt_*'")
  [[ $n -eq $(wc -l <registered.txt) ]] && ok || bad "mrt_* functions in a non-UTF-8 encoding or not scalar"
  for f in $(cut -d' ' -f1 registered.txt | sort -u); do
    if grep -q "^### \`$f(" "$readme" && grep -q "^\*\* *$f(" "$src/ext/mrt_sqlite.c"; then ok; else bad "$f: no '### \`$f(' section in ext/README.md or entry in ext/mrt_sqlite.c's header"; fi
  done
  ;;

examples)
  # As sql/README.md says to run them, in a fresh archive, twice for the schema.
  # A copy of samples/: the shell's fsdir() does not descend through a link.
  rm samples && cp -R "$src/samples" samples || exit 1
  for i in 1 2; do
    sql photos.db <"$src/sql/schema.sql" >schema.out 2>&1 || bad "schema.sql (run $i): $(cat schema.out)"
  done
  if sql -bail photos.db <"$src/sql/examples.sql" >examples.out 2>examples.err && [[ ! -s examples.err ]]; then
    ok
  else
    bad "examples.sql: $(cat examples.err)"
  fi
  [[ $(head -c 8 coffee.png | od -An -tx1 | tr -d ' ') == 89504e470d0a1a0a ]] && ok ||
    bad "examples.sql did not write coffee.png"
  n=$(sql photos.db "SELECT count(*) FROM images")
  [[ $n -eq 5 ]] && ok || bad "examples.sql stored $n images, want 5"
  ;;

oneliners)
  # Exactly README's "Done when" commands, run from the source tree.
  cd "$src" || exit 1
  rel=${load#"$src"/}
  n=$("$sqlite3" :memory: ".load $rel" "select length(mrt_encode(readfile('samples/coffee.jpg')))" 2>&1)
  [[ $n =~ ^[0-9]+$ && $n -ge 100 && $n -le 2000 ]] && ok || bad "encode one-liner printed '$n'"
  n=$("$sqlite3" :memory: ".load $rel" "select length(mrt_decode(mrt_encode(readfile('samples/coffee.jpg'))))" 2>&1)
  [[ $n =~ ^[0-9]+$ && $n -ge 1000 ]] && ok || bad "decode one-liner printed '$n'"
  cd "$work" || exit 1
  ;;

*)
  echo "run_sql.sh: unknown mode '$mode'" >&2
  exit 2
  ;;
esac

echo "ext_sql_$mode: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
