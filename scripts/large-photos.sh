#!/usr/bin/env bash
# Large photos for evaluation that no model was trained or tuned on: the
# photographs of Debian's lomiri-wallpapers-16.04 package (Ubuntu wallpaper
# contest photos; the training set's Debian photos came from other packages,
# see ../shared/data/README.md) of at least MIN_MP megapixels, copied into DIR.
# At 8 MP: five photos of 9.8-15.9 MP (a bridge, a dragonfly, wine glasses,
# dandelions, a sunset).
#
#   scripts/large-photos.sh DIR [MIN_MP]     (MIN_MP default 8)
#
# The photos keep their own licences (see the package's copyright file) and
# stay outside the repository: bench/README.md uses them for the byte-budget
# benchmark (bench/rd.sh --images DIR).
set -euo pipefail
dir=${1:?usage: scripts/large-photos.sh DIR [MIN_MP]}
min_mp=${2:-8}
command -v dpkg-deb >/dev/null || { echo "large-photos: dpkg-deb is missing" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mrt-large-photos.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download lomiri-wallpapers-16.04 >/dev/null 2>&1) || {
  echo "large-photos: apt-get download lomiri-wallpapers-16.04 failed (run apt-get update?)" >&2
  exit 1
}
dpkg-deb -x "$tmp"/lomiri-wallpapers-16.04_*.deb "$tmp/x"
mkdir -p "$dir"
n=0
while IFS= read -r -d '' f; do
  # "JPEG image data, ..., 4224x3168, components 3": the last WxH is the size
  size=$(file -b "$f" | grep -oE '[0-9]+x[0-9]+' | tail -1 || true)
  [[ -n $size ]] || continue
  w=${size%x*} h=${size#*x}
  # not a photograph: an abstract colour gradient
  [[ $(basename "$f") == umang_by_Abhishek_Mudgal.jpg ]] && continue
  if (( w * h >= min_mp * 1000000 )); then
    cp "$f" "$dir/"
    echo "$(basename "$f") ${w}x${h}"
    n=$((n + 1))
  fi
done < <(find "$tmp/x" -type f -name '*.jpg' -print0 | sort -z)
echo "large-photos: $n photos of at least $min_mp MP in $dir" >&2
