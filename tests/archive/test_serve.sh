#!/usr/bin/env bash
# `mrtarchive serve` end to end (ctest archive_serve): a real server on a
# loopback port chosen by the kernel, checked with curl (status codes,
# content types, 404s, refused methods, hostile paths and queries, keyset
# paging in every order, the thumbnail cache, an add while it serves,
# SIGTERM and SIGINT), then the gallery and a photo page loaded in headless
# Chromium, whose screenshots must show the thumbnails and the photo drawn.
#   test_serve.sh MRTARCHIVE SOURCE_DIR [SCREENSHOT_DIR]
# SCREENSHOT_DIR: where to keep the screenshots (README's picture is one).
# Exit 77 (skipped) without curl or chromium (scripts/install-deps.sh
# installs both).
set -u
A=$1 SRC=$2 SHOTS=${3:-}
export OMP_WAIT_POLICY=PASSIVE MRT_THREADS=${MRT_THREADS:-1}
for tool in curl sqlite3 chromium python3; do
  command -v $tool >/dev/null || { echo "$tool not installed: skipped"; exit 77; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/mrtarchive-serve.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done; rm -rf "$T"; }
trap cleanup EXIT
cd "$T"
source "$SRC/tests/archive/checks.sh"
M=(--model "$SRC/models/default.gguf")

# start DB: runs serve on a free port in the background; sets pid and url
start() {
  "$A" -f "$1" "${M[@]}" serve --listen 127.0.0.1:0 2>"$T/serve-$2.err" &
  pid=$!
  pids+=("$pid")
  url=
  for _ in $(seq 1 100); do
    url=$(sed -n 's|.*serving .* at \(http://127.0.0.1:[0-9]*\)/ .*|\1|p' "$T/serve-$2.err")
    [[ -n $url ]] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  cat "$T/serve-$2.err"
  return 1
}
# get PATH [curl options]: the body into $T/body, headers into $T/head;
# prints "CODE CONTENT-TYPE"
get() {
  local path=$1; shift
  curl -s --max-time 60 -o "$T/body" -D "$T/head" -w '%{http_code} %{content_type}' "$@" "$url$path"
}
figures() { grep -o '<figure>' "$T/body" | wc -l; }

# --- the samples, with their originals --------------------------------------
cp -r "$SRC/samples" samples
"$A" -q -f photos.mrtdb "${M[@]}" add --keep-original samples || { echo "cannot add the samples"; exit 1; }
start photos.mrtdb a || { echo "serve did not start"; exit 1; }
echo "serving at $url"
coffee=$(sqlite3 photos.mrtdb "select id from images where name = 'samples/coffee.jpg'")

check "/ is HTML" [ "$(get /)" = "200 text/html; charset=utf-8" ]
check "... five thumbnails" [ "$(figures)" = 5 ]
check "... each links its photo page" grep -q "href=\"/photo/$coffee\"" "$T/body"
check "... no next page" bash -c "! grep -q 'rel=\"next\"' '$T/body'"
check "/stats is HTML" [ "$(get /stats)" = "200 text/html; charset=utf-8" ]
check "... counts the photos" grep -q '<th>photos</th><td>5</td>' "$T/body"
check "/photo/ID is HTML" [ "$(get /photo/$coffee)" = "200 text/html; charset=utf-8" ]
check "... names the photo" grep -q '<h2>samples/coffee.jpg</h2>' "$T/body"
check "... its bytes, bpp, compression and model" \
  bash -c "grep -q '<th>bits per pixel</th><td>0\.0' '$T/body' && grep -q ' : 1</td>' '$T/body' && grep -q '<th>model</th><td><code>[0-9a-f]\{16\}' '$T/body'"
check "... the original beside it" grep -q "src=\"/original/$coffee\"" "$T/body"
check "... a PNG download" grep -q "href=\"/image/$coffee.png?download=1\"" "$T/body"
check "/image/ID.png is a PNG" [ "$(get /image/$coffee.png)" = "200 image/png" ]
check "... 600x400" [ "$(od -An -tx1 -j16 -N8 "$T/body" | tr -d ' \n')" = 0000025800000190 ]
get "/image/$coffee.png?download=1" >/dev/null
check "... ?download=1 is an attachment named coffee.png" \
  grep -qi '^content-disposition: attachment; filename="coffee.png"' "$T/head"
check "/thumb/ID.png is a PNG" [ "$(get /thumb/$coffee.png)" = "200 image/png" ]
check "... 300x200 (1/2: the longer side stays >= 192)" \
  [ "$(od -An -tx1 -j16 -N8 "$T/body" | tr -d ' \n')" = 0000012c000000c8 ]
check "/original/ID is the kept JPEG" [ "$(get /original/$coffee)" = "200 image/jpeg" ]
check "... byte for byte" cmp -s "$T/body" samples/coffee.jpg
check "HEAD: the headers" [ "$(get /thumb/$coffee.png -I)" = "200 image/png" ]
head_reply=$(python3 - "$url" "$coffee" <<'PY'
import socket, sys
host, port = sys.argv[1].split('//')[1].split(':')
s = socket.create_connection((host, int(port)), timeout=60)
s.sendall(b'HEAD /thumb/%s.png HTTP/1.0\r\nHost: x\r\n\r\n' % sys.argv[2].encode())
data = b''
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
head, _, body = data.partition(b'\r\n\r\n')
print(head.split(b'\r\n')[0].decode(), len(body))
PY
)
check "... and no body ($head_reply)" [ "$head_reply" = "HTTP/1.1 200 OK 0" ]
check "... the content is never sniffed" grep -qi '^x-content-type-options: nosniff' "$T/head"

# --- what is not there, and what is refused -----------------------------------
for p in /photo/999999 /thumb/999999.png /image/999999.png /original/999999 /nope /photo/abc \
    /photo/-1 /photo/01 /photo/1.5 /thumb/1 /photo/ /static/../../etc/passwd; do
  check "$p: 404" [ "$(get "$p" | cut -d' ' -f1)" = 404 ]
done
check "/../../etc/passwd as sent: 404" [ "$(get /../../../../etc/passwd --path-as-is | cut -d' ' -f1)" = 404 ]
check "... and nothing of the file" bash -c "! grep -q 'root:' '$T/body'"
check "%2e%2e: 404" [ "$(get /%2e%2e/%2e%2e/etc/passwd --path-as-is | cut -d' ' -f1)" = 404 ]
for m in POST PUT DELETE PATCH OPTIONS; do
  check "$m: 405" [ "$(get / -X "$m" | cut -d' ' -f1)" = 405 ]
done
check "... saying GET, HEAD" grep -qi '^allow: GET, HEAD' "$T/head"
long=$(head -c 3000 /dev/zero | tr '\0' a)
code=$(get "/photo/$long" | cut -d' ' -f1)
check "a 3000-byte path is refused ($code)" [ "$code" = 414 ]
code=$(get "/?q=$long" | cut -d' ' -f1)
check "a 3000-byte search is refused ($code)" [ "$code" = 400 ]
code=$(get / -H "X-Big: $(head -c 40000 /dev/zero | tr '\0' b)" | cut -d' ' -f1)
check "a 40 KB header is refused ($code)" [ "$code" = 431 ] || [ "$code" = 413 ] || [ "$code" = 000 ]
check "... and the server still answers" [ "$(get / | cut -d' ' -f1)" = 200 ]
# queries reach SQL bound, HTML escaped, and LIKE's wildcards match literally
check "?q=coffee: one" [ "$(get '/?q=coffee' | cut -d' ' -f1)" = 200 ] && check "... figure" [ "$(figures)" = 1 ]
get "/?q=%27%20OR%201%3D1%20--%20" >/dev/null
check "?q=' OR 1=1 -- : none" [ "$(figures)" = 0 ]
get "/?q=%25" >/dev/null
check "?q=%: none (literal)" [ "$(figures)" = 0 ]
get "/?q=_" >/dev/null
check "?q=_: none (literal)" [ "$(figures)" = 0 ]
get "/?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E" >/dev/null
check "?q=<script>: escaped in the page" bash -c "! grep -q '<script>' '$T/body' && grep -q '&lt;script&gt;' '$T/body'"
check "?after=abc: 400" [ "$(get '/?after=abc' | cut -d' ' -f1)" = 400 ]
check "?sort=bogus: the name order" [ "$(get '/?sort=bogus' | cut -d' ' -f1)" = 200 ]

# --- the thumbnail cache: the background thread decodes the rest ------------------
for _ in $(seq 1 150); do
  n=$(sqlite3 photos.mrtdb "select count(*) from thumbnails" 2>/dev/null)
  [[ $n == 5 ]] && break
  sleep 0.2
done
check "every thumbnail cached ($n of 5)" [ "$n" = 5 ]
check "... keyed by image and model" [ "$(sqlite3 photos.mrtdb "select count(*) from thumbnails t join images i using (id) where t.model = i.model")" = 5 ]

# --- in a browser ---------------------------------------------------------------------
shot() { # URL OUT.png [WxH]: a headless Chromium screenshot
  timeout 120 chromium --headless=new --no-sandbox --disable-gpu --no-proxy-server \
    --hide-scrollbars --window-size="${3:-1200,800}" --virtual-time-budget=15000 \
    --user-data-dir="$T/chromium" --screenshot="$2" "$1" >/dev/null 2>&1
}
shot "$url/" gallery.png 1240,370 # one row of five: README.md's picture
check "Chromium: the gallery" [ -s gallery.png ]
colours=$(python3 "$SRC/tests/archive/png_colors.py" gallery.png 0 80 1240 370)
check "... shows the thumbnails drawn ($colours colours; text alone has under 100)" [ "${colours:-0}" -ge 300 ]
shot "$url/photo/$coffee" photo.png
colours=$(python3 "$SRC/tests/archive/png_colors.py" photo.png 0 120 1200 560)
check "Chromium: a photo page shows the photo ($colours colours)" [ "${colours:-0}" -ge 300 ]
shot "$url/?q=nothing-has-this-name" empty.png
colours=$(python3 "$SRC/tests/archive/png_colors.py" empty.png 0 80 1200 800)
check "... (the measure: a page without photos has $colours)" [ "${colours:-999}" -lt 100 ]
if [[ -n $SHOTS ]]; then mkdir -p "$SHOTS" && cp gallery.png photo.png "$SHOTS/"; fi

# --- an add while it serves --------------------------------------------------------
mkdir more && python3 "$SRC/tests/archive/mkpng.py" more/late-arrival.png 96 64 5
check "add while serving" "$A" -q -f photos.mrtdb "${M[@]}" add more
get '/?q=late-arrival' >/dev/null
check "... the new photo is in the gallery" [ "$(figures)" = 1 ]

kill -TERM "$pid"
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
wait "$pid"
check "SIGTERM stops it with status 0" [ $? = 0 ]
check "... the port is closed" bash -c "! curl -s --max-time 5 -o /dev/null '$url/'"

# --- keyset paging over 130 photos, in every order ------------------------------------------
mkdir many
for i in $(seq 1 130); do
  python3 "$SRC/tests/archive/mkpng.py" "many/p$(printf %03d "$i").png" 16 16 "$i"
  touch -d "@$((1600000000 + (i * 7919) % 130))" "many/p$(printf %03d "$i").png"
done
"$A" -q -f b.mrtdb "${M[@]}" -j 2 add many || bad "add 130 photos"
start b.mrtdb b || { echo "serve did not start"; exit 1; }
for sort in name date size; do
  next="/?sort=$sort" pages=0
  : >"$T/ids-$sort"
  while [[ -n $next && $pages -lt 10 ]]; do
    get "$next" >/dev/null
    pages=$((pages + 1))
    grep -o 'href="/photo/[0-9]*"' "$T/body" | grep -o '[0-9]*' >>"$T/ids-$sort"
    [[ $pages == 1 ]] && first=$(figures)
    next=$(grep -o 'rel="next" href="[^"]*"' "$T/body" | sed 's/.*href="//; s/"$//; s/&amp;/\&/g')
  done
  check "sort=$sort: 3 pages (60, 60, 10)" [ "$pages" = 3 ] && [ "$first" = 60 ]
  check "... every photo once" [ "$(sort -u "$T/ids-$sort" | wc -l)" = 130 ] && [ "$(wc -l <"$T/ids-$sort")" = 130 ]
done
want=$(sqlite3 b.mrtdb "select id from images order by name, id")
check "... name order is the names'" [ "$(cat "$T/ids-name")" = "$want" ]
want=$(sqlite3 b.mrtdb "select id from images order by ifnull(mtime, -1) desc, id desc")
check "... date order is newest first" [ "$(cat "$T/ids-date")" = "$want" ]
want=$(sqlite3 b.mrtdb "select id from images order by sz desc, id desc")
check "... size order is largest first" [ "$(cat "$T/ids-size")" = "$want" ]
get '/?q=p12' >/dev/null
check "search: ?q=p12 finds p120..p129" [ "$(figures)" = 10 ]
# the orders are walked in an index, from where the page starts (no OFFSET, no sort)
for o in "name >= 'p050' AND (name, id) > ('p050', 50) ORDER BY name, id" \
         "ifnull(mtime, -1) <= 5 AND (ifnull(mtime, -1), id) < (5, 50) ORDER BY ifnull(mtime, -1) DESC, id DESC" \
         "sz <= 100 AND (sz, id) < (100, 50) ORDER BY sz DESC, id DESC"; do
  plan=$(sqlite3 b.mrtdb "EXPLAIN QUERY PLAN SELECT id FROM images WHERE $o LIMIT 61")
  check "plan: ${o##*ORDER BY } seeks in an index" \
    bash -c "grep -q 'SEARCH images USING .*INDEX' <<<'$plan' && ! grep -q 'TEMP B-TREE' <<<'$plan'"
done
kill -INT "$pid"
wait "$pid"
check "SIGINT stops it with status 0" [ $? = 0 ]

# --- refused at the start -------------------------------------------------------------
"$A" -f photos.mrtdb "${M[@]}" serve --listen nonsense 2>"$T/err"
check "--listen nonsense: exit 2" [ $? = 2 ]
check "... saying what it takes" grep -q "expected ADDRESS:PORT" "$T/err"
"$A" -f none.mrtdb "${M[@]}" serve 2>"$T/err"
check "a missing archive: exit 2" [ $? = 2 ]

echo "$fails failure(s)"
[ "$fails" = 0 ]
