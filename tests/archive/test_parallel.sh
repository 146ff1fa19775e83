#!/usr/bin/env bash
# mrtarchive-parallel over real hosts (ctest archive_parallel): three sshd
# instances on 127.0.0.1, each on its own port with a host key and a client
# key this test makes, stand in for three machines; GNU parallel sends the
# files with rsync, runs `mrtarchive add` on each "host", brings the shards
# back, and `mrtarchive merge` joins them. The merged archive must equal a
# one-machine `add -T` of the same list: the same names with the same mtimes,
# the same bitstreams byte for byte, the same kept originals and ingest
# errors. Then two faults of host 3, staged by a wrapper around its
# mrtarchive: a job's shard lost after the job ended (the recipe must see it
# missing and run the job again), and the host killed (kill -9 of its sshd
# and all its sessions) in the middle of a job (parallel runs it again on
# another host, --retries). Each time the archive is still that same one,
# nothing stored twice.
#   test_parallel.sh MRTARCHIVE SOURCE_DIR
# Needs root (sshd), sshd, ssh, GNU parallel, rsync (scripts/install-deps.sh
# installs them); exit 77 (skipped) when not root.
set -u
A=$1 SRC=$2
RECIPE=$SRC/archive-tool/mrtarchive-parallel
export OMP_WAIT_POLICY=PASSIVE MRTARCHIVE=$A
[ "$(id -u)" = 0 ] || { echo "not root (sshd needs it): skipped"; exit 77; }
for tool in /usr/sbin/sshd ssh ssh-keygen parallel rsync sqlite3 python3; do
  command -v "$tool" >/dev/null || { echo "FAIL $tool is not installed (scripts/install-deps.sh)"; exit 1; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/mrtarchive-parallel.XXXXXX")
chmod 700 "$T"
sshd_pids=()
cleanup() {
  for p in "${sshd_pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  [ -n "${KEEP_TMP:-}" ] && echo "kept $T" || rm -rf "$T"
}
trap cleanup EXIT
cd "$T"
source "$SRC/tests/archive/checks.sh"

# --- three hosts on loopback ------------------------------------------------
# sshd refuses to start without its privilege-separation folder (made by the
# service scripts, which a container never runs)
mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$T/host_key" && ssh-keygen -q -t ed25519 -N '' -f "$T/id" \
  && cp "$T/id.pub" "$T/authorized_keys" || { echo "FAIL ssh-keygen"; exit 1; }
# start_host N: sshd N on a free port of 127.0.0.1, listening only there, the
# test's key the only way in; sets port_N and pid_N
start_host() {
  local n=$1 port
  for _ in $(seq 1 20); do
    port=$((20000 + RANDOM % 40000))
    cat >"$T/sshd$n.conf" <<EOF
ListenAddress 127.0.0.1:$port
HostKey $T/host_key
PidFile none
AuthorizedKeysFile $T/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
PrintMotd no
SetEnv MRT_TEST_HOST=$n
EOF
    /usr/sbin/sshd -D -f "$T/sshd$n.conf" -E "$T/sshd$n.log" &
    local pid=$!
    disown "$pid" # its kill -9 is the test's doing: no "Killed" report
    for _ in $(seq 1 50); do
      if ssh -i "$T/id" -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=no \
           -o UserKnownHostsFile="$T/known_hosts" -o LogLevel=ERROR -o ConnectTimeout=5 \
           -p "$port" root@127.0.0.1 true 2>/dev/null; then
        sshd_pids+=("$pid")
        eval "port_$n=$port pid_$n=$pid"
        return 0
      fi
      kill -0 "$pid" 2>/dev/null || break # the port was taken: another one
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
  done
  return 1
}
for n in 1 2 3; do
  start_host $n || { echo "FAIL sshd $n did not start"; cat "$T/sshd$n.log"; exit 1; }
done
ok "three sshd on 127.0.0.1 ports $port_1 $port_2 $port_3"
# the host list, GNU parallel's format: one job at a time on each "host"
ssh_cmd="ssh -i $T/id -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=$T/known_hosts -o LogLevel=ERROR -o ConnectTimeout=5"
for n in 1 2 3; do eval "echo \"1/$ssh_cmd -p \$port_$n root@127.0.0.1\""; done >hosts

# --- the photos -------------------------------------------------------------
# samples, small generated PNGs in nested folders (one name with a space),
# the same bytes under two names in different jobs, a corrupt JPEG (an
# ingest error), and mtimes in the past (they must survive the transfer)
mkdir -p photos/2019/spring photos/2020 "photos/odd names"
cp "$SRC"/samples/*.png "$SRC"/samples/*.jpg photos/2019/
for i in $(seq 1 8); do python3 "$SRC/tests/archive/mkpng.py" "photos/2020/gen-$i.png" 96 64 "$i"; done
cp photos/2019/coffee.jpg "photos/odd names/coffee again.jpg"
head -c 3000 /dev/urandom >photos/2019/spring/broken.jpg
python3 "$SRC/tests/archive/mkpng.py" "photos/2019/spring/bloom.png" 120 80 77
i=0
find photos -type f | sort | while read -r f; do
  i=$((i + 1)); touch -d "@$((1500000000 + i * 86400))" "$f"
done
find photos -type f -print0 | sort -z >list
nfiles=$(tr -dc '\000' <list | wc -c)
ok "$nfiles files listed"

# the reference: the same list added on one machine
MRT_THREADS=1 "$A" -q -f single.mrtdb add --keep-original -T list
check "one-machine add: 1 file failed (the corrupt JPEG)" [ $? = 1 ]

contents single.mrtdb >single.txt
# same_as_single ARCHIVE WHAT: ARCHIVE holds what the one-machine add made
same_as_single() {
  contents "$1" >"$1.txt"
  check "$2" cmp -s single.txt "$1.txt"
  cmp -s single.txt "$1.txt" || diff single.txt "$1.txt" | head
}
check "the reference holds every name" [ "$(grep -c ' [0-9a-f]\{64\} ' single.txt)" = $((nfiles - 1)) ]

# --- spread over the three hosts ---------------------------------------------
# --workdir: the jobs' folder on the hosts, inside this test's folder (they
# all are this machine: the default, ~/.parallel/tmp, would be root's home)
mkdir remote
"$RECIPE" --sshloginfile hosts --chunk 3 --workdir "$T/remote" --remote-mrtarchive "$A" \
  spread.mrtdb list -- --keep-original >spread.out 2>&1
rc=$?
check "mrtarchive-parallel over 3 hosts: exit 0 (the corrupt JPEG is recorded, not a job failure)" [ $rc = 0 ]
[ $rc = 0 ] || cat spread.out
same_as_single spread.mrtdb \
  "... the merged archive equals a one-machine add (names, mtimes, bitstreams, originals, errors)"
check "... the shards folder is removed after the merge" [ ! -e spread.mrtdb.shards ]
check "... the hosts' job folders are cleaned up" [ -z "$(find remote -type f 2>/dev/null)" ]
check "... the photos were sent: the jobs ran on copies (the host logs show the logins)" \
  grep -q 'Accepted publickey' sshd2.log
check "... every host ran jobs" [ "$(grep -l 'Accepted publickey' sshd1.log sshd2.log sshd3.log | wc -l)" = 3 ]

# --- a host's shard lost, a host dying mid-job -------------------------------
# The hosts run mrtarchive through a wrapper that stages host 3's faults
# (each sshd sets MRT_TEST_HOST for its sessions; $T/scenario says which):
#   lose: host 3's first job ends well, then its shard is deleted before it
#         can come back (a host gone between the job and the return);
#   kill: host 3 holds its first job while the test kills its sshd with every
#         session under it (kill -9): the job's ssh breaks mid-job.
cat >remote-mrtarchive <<WRAPPER
#!/bin/bash
shard=; prev=
for a in "\$@"; do [ "\$prev" = -f ] && shard=\$a; prev=\$a; done
case "\$(cat '$T/scenario' 2>/dev/null)/\${MRT_TEST_HOST:-}" in
  lose/3) if mkdir '$T/lost-once' 2>/dev/null; then
            '$A' "\$@"; rc=\$?; rm -f "\$shard"; exit \$rc
          fi ;;
  kill/3) touch '$T/host3-running'; sleep 120 ;;
esac
exec '$A' "\$@"
WRAPPER
chmod +x remote-mrtarchive

echo lose >scenario
"$RECIPE" --sshloginfile hosts --chunk 2 --retries 3 --workdir "$T/remote" \
  --remote-mrtarchive "$T/remote-mrtarchive" lost.mrtdb list -- --keep-original >lost.out 2>&1
rc=$?
check "a shard lost after its job ended: exit 0" [ $rc = 0 ]
[ $rc = 0 ] || cat lost.out
check "... host 3 lost one" [ -d lost-once ]
check "... the recipe saw it and ran the job again" \
  grep -q "1 job(s) finished but their shards did not come back" lost.out
same_as_single lost.mrtdb "... the merged archive equals a one-machine add"

kill_tree() { local c; for c in $(pgrep -P "$1"); do kill_tree "$c"; done; kill -KILL "$1" 2>/dev/null; }
echo kill >scenario
(
  for _ in $(seq 1 2400); do
    if [ -e host3-running ]; then
      kill_tree "$pid_3"
      echo "killed host 3 in the middle of a job" >killed
      exit 0
    fi
    sleep 0.05
  done
) &
watcher=$!
"$RECIPE" --sshloginfile hosts --chunk 2 --retries 3 --workdir "$T/remote" \
  --remote-mrtarchive "$T/remote-mrtarchive" failover.mrtdb list -- --keep-original >failover.out 2>&1
rc=$?
wait $watcher
check "host 3 killed (sshd and its sessions, kill -9) in the middle of a job" [ -s killed ]
check "mrtarchive-parallel with a host killed: exit 0 (the job ran again elsewhere)" [ $rc = 0 ]
[ $rc = 0 ] || cat failover.out
same_as_single failover.mrtdb "... the merged archive still equals a one-machine add, nothing stored twice"
rm -f scenario

# --- re-running changes nothing ---------------------------------------------
# (host 3 is still down: its jobs go to the others)
"$RECIPE" --sshloginfile hosts --chunk 5 --workdir "$T/remote" --remote-mrtarchive "$A" \
  spread.mrtdb list -- --keep-original >again.out 2>&1
check "the same list again, one host down: exit 0" [ $? = 0 ]
same_as_single spread.mrtdb "... the archive holds the same (an ingest error's time aside)"

# --- a shared file system: nothing transferred ----------------------------------
# (these hosts are this machine: they see the files at the same paths)
"$RECIPE" --sshloginfile hosts --shared --chunk 4 --remote-mrtarchive "$A" \
  shared.mrtdb list -- --keep-original >shared.out 2>&1
check "--shared (the hosts read the files in place): exit 0" [ $? = 0 ]
same_as_single shared.mrtdb "... the merged archive equals a one-machine add"

# --- refusals ------------------------------------------------------------------
printf 'photos/2020/gen-1.png\n/etc/hostname\n' >hostile.list
"$RECIPE" --sshloginfile hosts --remote-mrtarchive "$A" x.mrtdb hostile.list >hostile.out 2>&1
check "a list with an absolute path is refused (exit 2)" [ $? = 2 ]
check "... saying why" grep -q 'absolute or have a' hostile.out
printf 'photos/../../etc/hostname\n' >hostile.list
"$RECIPE" --sshloginfile hosts --remote-mrtarchive "$A" x.mrtdb hostile.list >hostile.out 2>&1
check "a list with '..' is refused (exit 2)" [ $? = 2 ]
check "... and nothing made" [ ! -e x.mrtdb ] && [ ! -e x.mrtdb.shards ]

echo "$fails failed"
[ $fails = 0 ]
