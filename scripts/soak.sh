#!/usr/bin/env bash
# soak.sh runs a loopback cairn cluster (scripts/cluster.sh) under a
# write workload while killing a random chunkserver or the metaserver
# with SIGKILL at random moments, then restarts the whole cluster and
# checks every acknowledged file's sha256 and runs cairn fsck.
# See 'scripts/soak.sh --help'.
set -euo pipefail

prog=$(basename "$0")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# 4 chunkservers for 3 replicas: with one killed, writes go to the next
# in the ranking (with only 3, a write fails while one is down).
export CAIRN_CHUNKS=${CAIRN_CHUNKS:-4}
nchunks=$CAIRN_CHUNKS

usage() {
	cat <<EOF
Usage: $prog DIR MOUNTPOINT [SECONDS]

Starts a cluster of \$CAIRN_CHUNKS (default 4) chunkservers in DIR
(scripts/cluster.sh start DIR MOUNTPOINT), runs
2 writers on MOUNTPOINT for SECONDS (default 300) while a killer sends
SIGKILL to a random chunkserver or the metaserver every 3-10 s and starts
it again 0-4 s later, then stops the cluster, starts it again, checks the
sha256 of every file whose write and close succeeded, runs 'cairn fsck'
and stops the cluster. Exit 0 only if nothing acknowledged was lost or
changed and fsck finds 0 problems.

Only the processes recorded in DIR/pids (started by cluster.sh or by this
script, and still running DIR/cairn) are ever signalled. The metaserver's
port is \$CAIRN_META_PORT (default: a random one in 20000-29999).
EOF
}

die() {
	echo "$prog: $*" >&2
	exit 1
}

case "${1:-}" in
-h | --help | help) usage; exit 0 ;;
esac
[[ $# -eq 2 || $# -eq 3 ]] || { echo "$prog: want DIR MOUNTPOINT [SECONDS], got $# arguments" >&2; echo "Run '$prog --help' for usage." >&2; exit 2; }
secs=${3:-300}
[[ $secs =~ ^[0-9]+$ ]] && ((secs > 0)) || { echo "$prog: SECONDS must be a positive number, got '$secs'" >&2; exit 2; }
export CAIRN_META_PORT=${CAIRN_META_PORT:-$((20000 + RANDOM % 10000))}

"$here/cluster.sh" start "$1" "$2"
dir=$(cd "$1" && pwd -P)
mnt=$(<"$dir/mountpoint")
addr=$(<"$dir/meta-addr")
ca=$dir/meta/cluster.pem
work=$dir/soak
rm -rf "$work"
mkdir -p "$work"
soakdir=$mnt/soak-$(date +%s)
mkdir "$soakdir"

# ours NAME: the PID in DIR/pids/NAME.pid if it is still our DIR/cairn.
ours() {
	local pid
	pid=$(cat "$dir/pids/$1.pid" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/cairn " || return 1
	local stat
	stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]] || return 1
	echo "$pid"
}

# relaunch NAME: start a killed server again with the arguments
# cluster.sh gave it, recording its PID the same way.
relaunch() {
	local name=$1
	local -a args
	if [[ $name == meta ]]; then
		args=(meta --data "$dir/meta" --listen "$addr")
	else
		# On the address it had, as a restarted server would be.
		local listen
		listen=$(grep -o 'listening on [0-9.:]*' "$dir/logs/$name.log" | tail -n 1 | cut -d' ' -f3)
		args=(chunk --data "$dir/$name" --meta "$addr" --ca "$ca" --listen "${listen:-127.0.0.1:0}")
	fi
	echo "=== $(date '+%F %T') cairn ${args[*]} (soak restart)" >>"$dir/logs/$name.log"
	rm -f "$dir/pids/$name.pid"
	setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$dir/pids/$name.pid" "$dir/cairn" "${args[@]}" \
		</dev/null >>"$dir/logs/$name.log" 2>&1 &
	disown "$!" # its SIGKILL is expected, not news for the terminal
	local i
	for ((i = 0; i < 50; i++)); do
		[[ -s $dir/pids/$name.pid ]] && return 0
		sleep 0.1
	done
	die "$name did not start again (see $dir/logs/$name.log)"
}

# writer N: writes files of random sizes until $work/stop exists; a file
# whose copy into the mount (write and close) succeeded is acknowledged:
# its name and sha256 go to $work/acked.N.
writer() {
	local n=$1 i=0 size src name sum
	src=$work/src.$n
	while [[ ! -e $work/stop ]]; do
		i=$((i + 1))
		size=$(((RANDOM * 32768 + RANDOM) % (6 << 20) + 1))
		head -c "$size" /dev/urandom >"$src"
		sum=$(sha256sum "$src" | cut -d' ' -f1)
		name=w$n/d$((i % 10))/f$i
		mkdir -p "$soakdir/w$n/d$((i % 10))" 2>>"$work/errors.$n" || { echo "$(date +%T) mkdir failed" >>"$work/errors.$n"; continue; }
		if cp "$src" "$soakdir/$name" 2>>"$work/errors.$n"; then
			echo "$sum  $name" >>"$work/acked.$n"
		else
			echo "$(date +%T) write of $name failed" >>"$work/errors.$n"
		fi
	done
}

killer() {
	local victim pid down
	while [[ ! -e $work/stop ]]; do
		sleep $((3 + RANDOM % 8))
		[[ -e $work/stop ]] && break
		if ((RANDOM % 3 == 0)); then victim=meta; else victim=chunk$((1 + RANDOM % nchunks)); fi
		pid=$(ours "$victim") || { echo "$(date +%T) $victim is not running; starting it" >>"$work/kills"; relaunch "$victim"; continue; }
		kill -KILL "$pid"
		down=$((RANDOM % 5))
		echo "$(date +%T) SIGKILL $victim (PID $pid), down ${down}s" >>"$work/kills"
		sleep "$down"
		relaunch "$victim"
	done
}

pids=()
cleanup() {
	touch "$work/stop"
	local p
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap 'cleanup; "$here/cluster.sh" stop "$dir" || true; exit 130' INT TERM

echo "soak: writing into $soakdir for ${secs}s while killing servers (log: $work/kills)"
start=$(date +%s)
writer 1 & pids+=($!)
writer 2 & pids+=($!)
killer & pids+=($!)
sleep "$secs"
cleanup
trap - INT TERM
echo "soak: workload stopped after $(($(date +%s) - start))s"
cat "$work/kills"

# Every server running again, then a clean restart of the whole cluster.
for name in meta $(seq -f 'chunk%g' 1 "$nchunks"); do
	ours "$name" >/dev/null || relaunch "$name"
done
sleep 3
"$here/cluster.sh" stop "$dir"
"$here/cluster.sh" start "$dir" "$mnt" >/dev/null
echo "soak: cluster stopped and started again"

cat "$work"/acked.* >"$work/acked" 2>/dev/null || true
acked=$(wc -l <"$work/acked")
bytes=0
rc=0
if ! (cd "$soakdir" && sha256sum --quiet -c "$work/acked") >"$work/verify" 2>&1; then
	echo "soak: FAILED: acknowledged files lost or changed:" >&2
	head -n 20 "$work/verify" >&2
	rc=1
fi
while read -r _ name; do
	bytes=$((bytes + $(stat -c %s "$soakdir/$name" 2>/dev/null || echo 0)))
done <"$work/acked"
failed=$(cat "$work"/errors.* 2>/dev/null | grep -c 'failed' || true)
echo "soak: $acked acknowledged files ($bytes bytes) checked; $failed writes failed (not acknowledged, not checked)"

fsck_ok=""
for ((i = 0; i < 12; i++)); do
	if "$dir/cairn" fsck --verify --meta "$addr" --ca "$ca" >"$work/fsck" 2>&1 && grep -q '^0 problems' "$work/fsck"; then
		fsck_ok=1
		break
	fi
	sleep 5 # repair of blocks written while a chunkserver was down may still run
done
tail -n 3 "$work/fsck"
if [[ -z $fsck_ok ]]; then
	echo "soak: FAILED: cairn fsck found problems (see $work/fsck)" >&2
	rc=1
fi
"$here/cluster.sh" stop "$dir"
((rc == 0)) && echo "soak: OK"
exit "$rc"
