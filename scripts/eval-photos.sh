#!/usr/bin/env bash
# Photos for evaluation that no model was trained or tuned on, from Debian's
# lomiri-wallpapers-16.04 package (Ubuntu wallpaper contest photographs; the
# training set's Debian photos came from other packages, see
# ../shared/data/README.md), in two disjoint sets:
#
#   scripts/eval-photos.sh large DIR        five photos of 9.8-15.9 MP (a bridge,
#                                           a dragonfly, wine glasses, dandelions,
#                                           a sunset): the large-photo benchmark
#   scripts/eval-photos.sh validation DIR   the other nine photographs, 1.5-8 MP:
#                                           the validation split on which settings
#                                           are chosen (docs/DESIGN.md §7), never
#                                           Kodak and never the large set
#
# The package's abstract colour gradient (umang_by_Abhishek_Mudgal.jpg) is in
# neither. The photos keep their own licences (the package's copyright file)
# and stay outside the repository.
set -euo pipefail
set_name=${1:-}
dir=${2:-}
case $set_name in
  large)
    files=(Bridge_by_Sander_Klootwijk Dragonfly_by_Bolly Wine_by_Jakkub_Mede
           seeding_by_Clements_Engelhardt sunset_by_Aitzol_Berasategi) ;;
  validation)
    files=(Picture_0B_by_freespace Picture_1A_by_freespace aitzgorri_by_Aitzol_Berasategi
           analogpattern_by_Peter_Nerlich free_by_Peter_Nerlich friends_by_Aitzol_Berasategi
           greentock_by_Peter_Nerlich life_by_Aitzol_Berasategi
           picosdeeuropa_by_Aitzol_Berasategi) ;;
  *) echo "usage: scripts/eval-photos.sh large|validation DIR" >&2; exit 2 ;;
esac
[[ -n $dir ]] || { echo "usage: scripts/eval-photos.sh large|validation DIR" >&2; exit 2; }
command -v dpkg-deb >/dev/null || { echo "eval-photos: dpkg-deb is missing" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mrt-eval-photos.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download lomiri-wallpapers-16.04 >/dev/null 2>&1) || {
  echo "eval-photos: apt-get download lomiri-wallpapers-16.04 failed (run apt-get update?)" >&2
  exit 1
}
dpkg-deb -x "$tmp"/lomiri-wallpapers-16.04_*.deb "$tmp/x"
mkdir -p "$dir"
for name in "${files[@]}"; do
  src=$(find "$tmp/x" -type f -name "$name.jpg" | head -1)
  [[ -n $src ]] || { echo "eval-photos: $name.jpg is not in the package" >&2; exit 1; }
  cp "$src" "$dir/"
done
echo "eval-photos: ${#files[@]} photos ($set_name) in $dir" >&2
