#!/usr/bin/env bash
# Every reference to a document resolves inside the repository:
#   - "DESIGN.md §N" / "§N.M" anywhere in the tree names a section heading of
#     docs/DESIGN.md ("## N. ..." or "### N.M ..."); the same for
#     "BITSTREAM.md §N" and codec/BITSTREAM.md;
#   - a bare "§N" (one not after another document's name) inside
#     docs/DESIGN.md or codec/BITSTREAM.md names one of that document's own
#     sections;
#   - every relative Markdown link ](path) in a .md file points at a file or
#     folder that exists;
#   - nothing cites the original brief outside the repository
#     (shared/docs, seed-paper).
# Usage: test_doc_refs.sh SOURCE_DIR
set -euo pipefail
src=${1:?usage: test_doc_refs.sh SOURCE_DIR}
cd "$src"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# The text files of the tree: build outputs, git's own files and binary files
# (weights, images, fixtures) left out.
files() {
  find . \( -name .git -o -name 'build*' -o -path ./models/train \) -prune -o -type f -print |
    while read -r f; do grep -Iq . "$f" 2>/dev/null && echo "${f#./}"; done
}
mapfile -t tree < <(files)
[[ ${#tree[@]} -gt 50 ]] || fail "found only ${#tree[@]} text files under $src"

# The section numbers of a Markdown document: "## 5. Title" -> 5, "### 3.2 Title" -> 3.2.
sections_of() {
  grep -E '^#{2,4} [0-9]+(\.[0-9]+)*\.? ' "$1" | sed -E 's/^#+ ([0-9]+(\.[0-9]+)*)\.? .*/\1/'
}

check_document() { # check_document NAME PATH
  local name=$1 path=$2 file line ref where number
  [[ -f $path ]] || { fail "$path does not exist"; return; }
  local -A known=()
  for number in $(sections_of "$path"); do known[$number]=1; done
  [[ ${#known[@]} -gt 0 ]] || fail "$path has no numbered sections"
  # references from anywhere in the tree
  while IFS=: read -r file line ref; do
    number=${ref##*§}
    [[ -n ${known[$number]:-} ]] || fail "$file:$line: '$ref' names no section of $path"
  done < <(grep -HnoE "${name//./\\.}\`? §[0-9]+(\.[0-9]+)*" "${tree[@]}" || true)
  # the document's own bare references
  while IFS=: read -r where ref; do
    number=${ref#§}
    [[ -n ${known[$number]:-} ]] || fail "$path:$where: '$ref' names no section of this document"
  done < <(sed -E 's/[A-Za-z_.-]+\.md`? §[0-9]+(\.[0-9]+)*//g' "$path" | grep -noE "§[0-9]+(\.[0-9]+)*" || true)
}
check_document DESIGN.md docs/DESIGN.md
check_document BITSTREAM.md codec/BITSTREAM.md

# A reference with no "docs/" in front is still docs/DESIGN.md: there must be
# no other DESIGN.md in the tree to confuse it with.
for f in "${tree[@]}"; do
  [[ $(basename "$f") != DESIGN.md || $f == docs/DESIGN.md ]] || fail "$f: a second DESIGN.md"
done

# Relative Markdown links.
for f in "${tree[@]}"; do
  [[ $f == *.md ]] || continue
  while IFS=: read -r line target; do
    target=${target#](}
    target=${target%)}
    target=${target%%#*}
    [[ -z $target || $target == *://* || $target == mailto:* ]] && continue
    [[ -e $(dirname "$f")/$target ]] || fail "$f:$line: link to '$target', which does not exist"
  done < <(grep -noE '\]\([^) ]+\)' "$f" || true)
done

# Documents outside the repository.
while read -r hit; do
  fail "$hit: cites a document outside the repository"
done < <(grep -HnE 'shared/docs|seed-paper' "${tree[@]}" | grep -v '^tests/test_doc_refs.sh:' || true)

if [[ $failures -gt 0 ]]; then
  echo "test_doc_refs: $failures failure(s)"
  exit 1
fi
echo "test_doc_refs: every document reference in ${#tree[@]} files resolves"
