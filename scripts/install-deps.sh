#!/usr/bin/env bash
# Installs the Debian 12 packages README's two commands need (build, tests,
# sanitizer and fuzz builds, the demo), if any are missing, then checks that
# what the build depends on actually works: a package that is installed but
# broken, or a capability no listed package provides, fails here with one
# line naming the package instead of deep inside CMake or a link step.
# Idempotent: when everything is present it installs nothing and touches no
# network. Run as root (or through sudo). scripts/fresh-check.sh proves the
# list on a minimal Debian 12 root.
set -euo pipefail

packages=(
  cmake make gcc libc6-dev pkg-config # build
  libblis-dev                         # GEMM (pulls the OpenMP-threaded BLIS)
  libsqlite3-dev sqlite3              # the archive and the SQL extension
  libpng-dev libjpeg62-turbo-dev      # image input/output
  libarchive-dev                      # tarball import/export
  libmicrohttpd-dev                   # mrtarchive serve (the web gallery)
  # the gallery's test: curl for the endpoints, headless Chromium for the
  # pages (tests/archive/test_serve.sh)
  curl chromium
  # distributed ingest (archive-tool/mrtarchive-parallel) and its test, which
  # starts sshd instances on loopback as stand-in hosts
  parallel openssh-client openssh-server rsync
  # clang: the second compiler of the determinism test (an -O0 build with
  # OpenMP, hence libomp-dev) and the fuzz build (libFuzzer and the
  # sanitizer runtimes are in libclang-rt-dev, not in clang itself)
  clang libomp-dev libclang-rt-dev
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
else
  echo "install-deps: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
  else
    SUDO=
  fi
  export DEBIAN_FRONTEND=noninteractive
  # openssh-server is here for its sshd binary only (the distributed-ingest
  # test starts its own on loopback): a new install must not leave a system
  # ssh service running or enabled. A policy-rc.d (only if the machine has
  # none) keeps the package from starting it; it is disabled below.
  new_sshd=0 policy=
  if [[ " ${missing[*]} " == *" openssh-server "* ]]; then
    new_sshd=1
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      policy=/usr/sbin/policy-rc.d
      printf '#!/bin/sh\n# install-deps.sh: no service starts during this install\nexit 101\n' |
        $SUDO tee "$policy" >/dev/null && $SUDO chmod 755 "$policy"
    fi
  fi
  # apt's progress (hundreds of lines) goes to a log, shown only on failure
  apt_log=$(mktemp)
  if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
      >"$apt_log" 2>&1; then
    tail -n 20 "$apt_log" >&2
    rm -f "$apt_log"
    [ -z "$policy" ] || $SUDO rm -f "$policy"
    echo "install-deps: apt-get could not install ${missing[*]} (its last lines are above)" >&2
    exit 1
  fi
  rm -f "$apt_log"
  [ -z "$policy" ] || $SUDO rm -f "$policy"
  if [ "$new_sshd" = 1 ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1 || true
    echo "install-deps: openssh-server installed for its sshd binary (the tests'); the system ssh service is left disabled"
  fi
  echo "install-deps: installed ${#missing[@]} packages"
fi

# --- capability checks ------------------------------------------------------
# Each compiles (and links) a few lines the way the build does; on failure it
# names the package that provides the capability and stops.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

need() { # need PACKAGE WHAT COMMAND...: run COMMAND quietly, or fail naming PACKAGE
  local package=$1 what=$2
  shift 2
  if ! "$@" >"$scratch/log" 2>&1; then
    echo "install-deps: $what failed: install $package (apt-get install $package); $(head -c 300 "$scratch/log" | tr '\n' ' ')" >&2
    exit 1
  fi
}

cat >"$scratch/omp.c" <<'EOF'
#include <omp.h>
int main(void) { int n = 0;
#pragma omp parallel reduction(+:n)
  n += 1;
  return n > 0 && omp_get_max_threads() > 0 ? 0 : 1; }
EOF
cat >"$scratch/fuzz.c" <<'EOF'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { (void)data; (void)size; return 0; }
EOF
echo 'int main(void) { return 0; }' >"$scratch/empty.c"

need gcc "gcc building an OpenMP program" gcc -std=c11 -fopenmp "$scratch/omp.c" -o "$scratch/omp-gcc"
need libomp-dev "clang building an OpenMP program" clang -std=c11 -fopenmp "$scratch/omp.c" -o "$scratch/omp-clang"
need libomp-dev "running clang's OpenMP program" "$scratch/omp-clang"
need libclang-rt-dev "clang linking a -fsanitize=fuzzer,address program" \
  clang -fsanitize=fuzzer,address,undefined "$scratch/fuzz.c" -o "$scratch/fuzz"
# header:library:package; the include folders are CMakeLists.txt's for BLIS
for library in blis.h:blis:libblis-dev png.h:png:libpng-dev jpeglib.h:jpeg:libjpeg62-turbo-dev \
               archive.h:archive:libarchive-dev sqlite3.h:sqlite3:libsqlite3-dev \
               microhttpd.h:microhttpd:libmicrohttpd-dev; do
  IFS=: read -r header lib package <<<"$library"
  printf '#include <stdio.h>\n#include <%s>\n' "$header" >"$scratch/h.c"
  need "$package" "finding $header" gcc -std=c11 -D_POSIX_C_SOURCE=200809L \
    -I/usr/include/blis -I/usr/include/x86_64-linux-gnu/blis-openmp -I/usr/include/aarch64-linux-gnu/blis-openmp \
    -fsyntax-only "$scratch/h.c"
  need "$package" "linking -l$lib" gcc "$scratch/empty.c" -o "$scratch/empty" -Wl,--no-as-needed -l"$lib"
done
for tool in cmake:cmake make:make sqlite3:sqlite3 python3:python3 curl:curl chromium:chromium \
            parallel:parallel ssh:openssh-client /usr/sbin/sshd:openssh-server rsync:rsync; do
  need "${tool#*:}" "finding the ${tool%%:*} command" command -v "${tool%%:*}"
done
echo "install-deps: the compilers, OpenMP (gcc, clang), libFuzzer, BLIS, libpng, libjpeg, libarchive, SQLite and libmicrohttpd work"
