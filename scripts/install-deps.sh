#!/usr/bin/env bash
# Installs the Debian 12 packages mrt needs to build, test and run, if any are
# missing. Idempotent: when everything is present it changes nothing and
# touches no network. Run as root (or through sudo).
set -euo pipefail

packages=(
  cmake make gcc pkg-config           # build
  libblis-dev                         # GEMM (pulls the OpenMP-threaded BLIS)
  libsqlite3-dev sqlite3              # the archive and the SQL extension
  libpng-dev libjpeg62-turbo-dev      # image input/output
  libarchive-dev                      # tarball import/export
  clang                               # second compiler for the determinism tests
  python3 tar unzip zstd xz-utils     # the archive tests (test PNGs, reading exports back)
  # bench/rd.sh only (the classical codecs and the plot), not the build or
  # the codec; bench_rd_smoke skips when none of the codecs is present:
  libjpeg-turbo-progs webp libavif-bin libjxl-tools gnuplot-nox
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
