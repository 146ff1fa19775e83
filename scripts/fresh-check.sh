#!/usr/bin/env bash
# The fresh-machine check: README's two commands, exactly as README writes
# them, on a minimal Debian 12 as root.
#
#   bash scripts/fresh-check.sh [--keep]
#
# 1. builds a minimal Debian 12 (bookworm) root with debootstrap
#    --variant=minbase (installing debootstrap first if it is missing);
# 2. clones this repository's HEAD into it (/root/mrt: committed work only,
#    as a new user's `git clone` would get it);
# 3. takes README's two commands from README itself -- the first two lines
#    of its first ```sh block, comments dropped -- so the check and README
#    cannot drift apart;
# 4. runs each, as written, as root inside the root (chroot, a clean
#    environment, the network for apt-get) and prints its exit status and
#    wall time.
# Exit status 0 when both commands exit 0, 1 when one fails, 2 when the
# check itself could not run (not root, no network for debootstrap, ...).
#
# The root gets its own /proc, a read-only /sys, and a /dev that is a fresh
# tmpfs with a few device nodes (never a bind mount of the host's /dev, so
# nothing in the root can touch the host's devices). On every exit path --
# success, failure, Ctrl-C, TERM -- the trap kills whatever still runs in
# the root, unmounts it, and deletes it (unless --keep) only once nothing is
# mounted below it.
#
# Environment: MRT_FRESH_DIR (parent folder of the root, default /var/tmp),
# MRT_FRESH_MIRROR (default http://deb.debian.org/debian),
# MRT_FUZZ_SECONDS (passed into the root; default 5 there: README says so).
set -euo pipefail
cd "$(dirname "$0")/.."
# The script's own stdout and stderr, for cleanup's messages: a trap runs
# with the redirections of whatever command it interrupted.
exec 3>&1 4>&2
repo=$PWD

keep=0
case ${1:-} in
  "") ;;
  --keep) keep=1 ;;
  *) echo "usage: bash scripts/fresh-check.sh [--keep]" >&2; exit 2 ;;
esac

fail() { echo "fresh-check: $*" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || fail "must run as root (debootstrap and chroot)"
command -v git >/dev/null || fail "git is needed to clone the repository"
git -C "$repo" rev-parse --verify -q HEAD >/dev/null || fail "$repo has no commit to clone"

if ! command -v debootstrap >/dev/null; then
  echo "fresh-check: installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

# README's commands: the first two non-empty lines of the first ```sh block.
mapfile -t commands < <(awk '
  /^```sh[ \t]*$/ && !seen { inside = 1; seen = 1; next }
  inside && /^```/ { exit }
  inside { sub(/[ \t]*#.*/, ""); if ($0 != "") print }' README.md | head -n 2)
[[ ${#commands[@]} -eq 2 ]] || fail "README.md has no \`\`\`sh block with two commands"

root=$(mktemp -d "${MRT_FRESH_DIR:-/var/tmp}/mrt-fresh.XXXXXX")
[[ $root != *[[:space:]]* ]] || { rmdir "$root"; fail "MRT_FRESH_DIR must not contain white space"; }

# Processes whose root directory is inside $root.
processes_in_root() {
  local p
  for p in /proc/[0-9]*; do
    [[ $(readlink "$p/root" 2>/dev/null) == "$root"* ]] && echo "${p#/proc/}"
  done
  return 0
}

# Mount points below $root, deepest first (debootstrap's own included, should
# it have stopped half-way).
mounts_below_root() {
  awk -v r="$root/" 'index($2, r) == 1 { print length($2), $2 }' /proc/mounts | sort -rn | cut -d' ' -f2-
}

cleanup() {
  local status=$? signal pids target
  trap - EXIT INT TERM
  set +e
  # the job in flight (debootstrap or a command), with everything it started
  [[ -n ${job:-} ]] && kill -TERM -- "-$job" 2>/dev/null
  for signal in TERM KILL; do
    pids=$(processes_in_root)
    [[ -z $pids ]] && break
    kill -s "$signal" $pids 2>/dev/null
    sleep 2
  done
  for target in $(mounts_below_root); do
    umount "$target" 2>/dev/null || umount -l "$target"
  done
  exec 1>&3 2>&4
  [[ $status -ge 128 ]] && echo "fresh-check: stopped by a signal; cleaning up $root" >&2
  if [[ -n $(mounts_below_root) ]]; then
    echo "fresh-check: something is still mounted under $root; left in place" >&2
    [[ $status -eq 0 ]] && status=2
  elif [[ $keep -eq 1 ]]; then
    echo "fresh-check: kept $root"
  else
    rm -rf --one-file-system "$root"
  fi
  rm -f "$root.log"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a command in its own session, in the background, and waits for it:
# bash runs a trap only between foreground commands, while `wait` returns at
# once on a signal, so Ctrl-C or a TERM from CI reaches cleanup at once, and
# cleanup kills the whole session ($job). Returns the command's status.
job=
run_job() {
  setsid "$@" 3>&- 4>&- &
  job=$!
  local status=0
  wait "$job" || status=$?
  job=
  return "$status"
}

mount_in_root() { # mount_in_root TARGET mount-arguments...
  local target=$root/$1
  shift
  mkdir -p "$target"
  mount "$@" "$target"
}

echo "fresh-check: debootstrap --variant=minbase bookworm into $root"
start=$SECONDS
mirror=${MRT_FRESH_MIRROR:-http://deb.debian.org/debian}
if ! run_job debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1; then
  tail -n 5 "$root.log" >&2
  fail "debootstrap from $mirror failed"
fi
echo "fresh-check: minimal root ready in $((SECONDS - start)) s"

mount_in_root proc -t proc proc
mount_in_root sys -t sysfs -o ro sysfs
mount_in_root dev -t tmpfs -o mode=755,size=64m tmpfs
for node in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
  IFS=: read -r name major minor <<<"$node"
  mknod -m 666 "$root/dev/$name" c "$major" "$minor"
done
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mount_in_root dev/pts -t devpts -o newinstance,ptmxmode=0666 devpts
ln -s pts/ptmx "$root/dev/ptmx"
mount_in_root dev/shm -t tmpfs -o mode=1777 tmpfs
cp -L /etc/resolv.conf "$root/etc/resolv.conf"

git clone -q --depth 1 "file://$repo" "$root/root/mrt"
echo "fresh-check: cloned $(git -C "$root/root/mrt" log -1 --format='%h %s' | cut -c 1-72)"

overall=0
summary=()
for i in 0 1; do
  command=${commands[i]}
  echo "fresh-check: command $((i + 1)): $command"
  start=$SECONDS
  status=0
  run_job chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    MRT_FUZZ_SECONDS="${MRT_FUZZ_SECONDS:-5}" \
    /bin/bash -c "cd /root/mrt && $command" </dev/null > >(sed -u "s/^/  [$((i + 1))] /") 2>&1 || status=$?
  summary+=("fresh-check: command $((i + 1)) \`$command\`: exit status $status, $((SECONDS - start)) s wall")
  echo "${summary[i]}"
  [[ $status -eq 0 ]] || overall=1
done

printf '%s\n' "${summary[@]}"
exit "$overall"
