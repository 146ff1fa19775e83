#!/usr/bin/env bash
# Writes the SHA-256 of every bitstream and decoded PNG that an `mrt` binary
# makes from a set of photos with the shipped models, one line per file, so
# that two builds (before and after a refactoring, or two machines) can be
# compared with diff:
#
#   scripts/identity-manifest.sh MRT_BINARY OUT.txt [IMAGE_DIR...]
#
# Default image folders: samples/ and ../shared/data/kodak (when present).
# For each image and each models/mrt-*.gguf: a one-pass encode, its decode,
# and an `encode --bytes 1KB` with the shipped rate points (the working-size
# search) and its decode. Single-threaded: the entropy-coded symbols do not
# depend on the thread count (docs/DESIGN.md §5), but the manifest should not
# depend on it even in principle.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 2 ]] || { sed -n '2,13p' "$0" >&2; exit 2; }
mrt=$(realpath "$1")
out=$2
shift 2
dirs=("$@")
if [[ ${#dirs[@]} -eq 0 ]]; then
  dirs=(samples)
  [[ -d ../shared/data/kodak ]] && dirs+=(../shared/data/kodak)
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mrt-identity.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export MRT_THREADS=1 OMP_NUM_THREADS=1
: > "$out"
for dir in "${dirs[@]}"; do
  for img in "$dir"/*.png "$dir"/*.jpg; do
    [[ -f $img ]] || continue
    base=$(basename "$img")
    for model in models/mrt-*.gguf; do
      rate=$(basename "$model" .gguf)
      "$mrt" encode "$img" "$tmp/s.mrt" --model "$model" --quiet
      "$mrt" decode "$tmp/s.mrt" "$tmp/s.png" --model "$model" --quiet
      echo "$(sha256sum < "$tmp/s.mrt" | cut -c1-64) $base $rate bitstream" >> "$out"
      echo "$(sha256sum < "$tmp/s.png" | cut -c1-64) $base $rate png" >> "$out"
    done
    "$mrt" encode "$img" "$tmp/b.mrt" --model models/default.gguf --bytes 1KB --quiet
    "$mrt" decode "$tmp/b.mrt" "$tmp/b.png" --quiet
    echo "$(sha256sum < "$tmp/b.mrt" | cut -c1-64) $base 1KB bitstream" >> "$out"
    echo "$(sha256sum < "$tmp/b.png" | cut -c1-64) $base 1KB png" >> "$out"
  done
done
echo "identity-manifest: $(wc -l < "$out") hashes in $out"
