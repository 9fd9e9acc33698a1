#!/usr/bin/env bash
# cluster.sh starts a multi-process cairn cluster on loopback — one
# metaserver, three chunkservers and a FUSE mount, each its own process —
# and stops it again. See 'scripts/cluster.sh --help'.
set -euo pipefail

prog=$(basename "$0")
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
port=${CAIRN_META_PORT:-7421}
nchunks=${CAIRN_CHUNKS:-3}
replicas=${CAIRN_REPLICAS:-3}

usage() {
	cat <<EOF
Usage:
  $prog start DIR MOUNTPOINT   build cairn into DIR, start a metaserver, $nchunks chunkservers
                               and a mount at MOUNTPOINT (created if missing)
  $prog stop DIR               unmount and stop the cluster started in DIR
  $prog status DIR             show the cluster's map and capacity (cairn status)
  $prog --help                 show this help

Everything listens on 127.0.0.1. The metaserver's UDP port is \$CAIRN_META_PORT
(default 7421); the number of chunkservers is \$CAIRN_CHUNKS (default 3), the
copies of each block \$CAIRN_REPLICAS (default 3). Extra flags for the mount (such as
--cache-mb or --memory-mb) go in \$CAIRN_MOUNT_FLAGS.
DIR holds the binary (DIR/cairn), the data (DIR/meta,
DIR/chunk1..$nchunks), the logs (DIR/logs/*.log) and the PIDs (DIR/pids/*.pid).
Starting again on the same DIR keeps the data.
EOF
}

die() {
	echo "$prog: $*" >&2
	exit 1
}

usage_error() {
	echo "$prog: $*" >&2
	echo "Run '$prog --help' for usage." >&2
	exit 2
}

abspath() { (cd "$1" && pwd -P); }

# is_mounted DIR: whether something is mounted at DIR (an absolute path).
is_mounted() {
	local mp
	# /proc/self/mounts escapes spaces as \040 and so on; undo that.
	while read -r _ mp _; do
		[[ $(printf '%b' "$mp") == "$1" ]] && return 0
	done </proc/self/mounts
	return 1
}

# ours DIR NAME: the PID in DIR/pids/NAME.pid, if that process is still
# the cairn we started (so a recycled PID is never signalled).
ours() {
	local pidfile="$1/pids/$2.pid" pid
	[[ -f $pidfile ]] || return 1
	pid=$(<"$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	alive "$pid" || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$1/cairn " || return 1
	echo "$pid"
}

# alive PID: whether PID is running (a zombie, exited but not yet
# reaped, is not).
alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

# wait_gone PID SECONDS: wait until PID has exited.
wait_gone() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		alive "$1" || return 0
		sleep 0.1
	done
	return 1
}

# launch DIR NAME ARGS...: start DIR/cairn ARGS in its own session, with
# its log in DIR/logs/NAME.log and its PID in DIR/pids/NAME.pid.
launch() {
	local dir=$1 name=$2
	shift 2
	echo "=== $(date '+%F %T') cairn $*" >>"$dir/logs/$name.log"
	# The inner shell records its own PID and then becomes cairn (exec), so
	# the recorded PID is cairn's whatever setsid does.
	setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$dir/pids/$name.pid" "$dir/cairn" "$@" \
		</dev/null >>"$dir/logs/$name.log" 2>&1 &
	local i
	for ((i = 0; i < 50; i++)); do
		[[ -s $dir/pids/$name.pid ]] && return 0
		sleep 0.1
	done
	die "$name did not start (see $dir/logs/$name.log)"
}

# wait_for DIR NAME SECONDS WHAT CHECK...: wait until CHECK succeeds while
# the process NAME is alive; on failure show the end of its log.
wait_for() {
	local dir=$1 name=$2 secs=$3 what=$4 i
	shift 4
	for ((i = 0; i < secs * 10; i++)); do
		if "$@"; then
			return 0
		fi
		if ! ours "$dir" "$name" >/dev/null; then
			echo "$prog: $name exited before $what; the end of $dir/logs/$name.log:" >&2
			tail -n 5 "$dir/logs/$name.log" | sed 's/^/    /' >&2
			return 1
		fi
		sleep 0.1
	done
	echo "$prog: $name: no $what after ${secs}s (see $dir/logs/$name.log)" >&2
	return 1
}

# log_has_since FILE MARK TEXT: TEXT appears in FILE after line MARK.
log_has_since() { tail -n +"$(($2 + 1))" "$1" | grep -qF -- "$3"; }

lines() { if [[ -f $1 ]]; then wc -l <"$1"; else echo 0; fi; }

# stop_one DIR NAME SECONDS: SIGTERM a recorded process and wait for it.
stop_one() {
	local dir=$1 name=$2 secs=$3 pid
	if ! pid=$(ours "$dir" "$name"); then
		rm -f "$dir/pids/$name.pid"
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	if ! wait_gone "$pid" "$secs"; then
		echo "$prog: $name (PID $pid) did not stop within ${secs}s after SIGTERM; see $dir/logs/$name.log" >&2
		return 1
	fi
	rm -f "$dir/pids/$name.pid"
	echo "stopped $name (PID $pid)"
}

# fs_type DIR: the filesystem type mounted at DIR (an absolute path).
fs_type() {
	local mp type
	while read -r _ mp type _; do
		[[ $(printf '%b' "$mp") == "$1" ]] && echo "$type"
	done </proc/self/mounts
}

stop_cluster() {
	local dir=$1 mnt="" pid rc=0 i
	[[ -f $dir/mountpoint ]] && mnt=$(<"$dir/mountpoint")
	# However many chunkservers were started, whatever CAIRN_CHUNKS is now.
	[[ -f $dir/chunks ]] && nchunks=$(<"$dir/chunks")
	# The mount first: it flushes open files to the chunkservers, which
	# must still be running.
	if pid=$(ours "$dir" mount); then
		kill -TERM "$pid" 2>/dev/null || true
		if ! wait_gone "$pid" 120; then
			echo "$prog: mount (PID $pid) did not exit within 120s after SIGTERM; left the chunkservers and the metaserver running." >&2
			echo "$prog: see $dir/logs/mount.log; to force: kill -9 $pid; umount -l $mnt; $prog stop $dir" >&2
			return 1
		fi
		rm -f "$dir/pids/mount.pid"
		echo "unmounted ${mnt:-the mountpoint} and stopped mount (PID $pid)"
	else
		rm -f "$dir/pids/mount.pid"
	fi
	if [[ -n $mnt ]] && is_mounted "$mnt"; then
		# Its process is gone (killed?): nothing can flush any more, so
		# detach the dead cairn mount (stat fails: "transport endpoint is
		# not connected") rather than leave it in the way. A live one,
		# someone else's, is left alone.
		if [[ $(fs_type "$mnt") == fuse.cairn ]] && ! stat "$mnt" >/dev/null 2>&1 && umount -l "$mnt"; then
			echo "detached the dead cairn mount at $mnt (its process was gone)"
		else
			echo "$prog: $mnt is still mounted; unmount it with: umount -l $mnt" >&2
			rc=1
		fi
	fi
	# The chunkservers together (each takes a moment), then the metaserver.
	local -a chunk_pids=()
	for ((i = 1; i <= nchunks; i++)); do
		chunk_pids[i]=""
		if pid=$(ours "$dir" "chunk$i"); then
			kill -TERM "$pid" 2>/dev/null || true
			chunk_pids[i]=$pid
		else
			rm -f "$dir/pids/chunk$i.pid"
		fi
	done
	for ((i = 1; i <= nchunks; i++)); do
		pid=${chunk_pids[i]}
		[[ -n $pid ]] || continue
		if wait_gone "$pid" 30; then
			rm -f "$dir/pids/chunk$i.pid"
			echo "stopped chunk$i (PID $pid)"
		else
			echo "$prog: chunk$i (PID $pid) did not stop within 30s after SIGTERM; see $dir/logs/chunk$i.log" >&2
			rc=1
		fi
	done
	stop_one "$dir" meta 30 || rc=1
	return "$rc"
}

start_dir=""
start_failed() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n $start_dir ]]; then
		local why=failed
		((rc == 130)) && why=interrupted
		echo "$prog: start $why; stopping what was started in $start_dir" >&2
		stop_cluster "$start_dir" >/dev/null 2>&1 || echo "$prog: could not stop everything; see $start_dir/logs and $start_dir/pids" >&2
	fi
	exit $((rc == 0 ? 1 : rc))
}

cmd_start() {
	[[ $# -eq 2 ]] || usage_error "start wants 2 arguments (DIR MOUNTPOINT), got $#"
	[[ $port =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)) ||
		usage_error "CAIRN_META_PORT must be a port number (1-65535), got '$port'"
	[[ $nchunks =~ ^[0-9]+$ ]] && ((nchunks > 0 && nchunks <= 16)) ||
		usage_error "CAIRN_CHUNKS must be a number of chunkservers (1-16), got '$nchunks'"
	[[ $replicas =~ ^[0-9]+$ ]] && ((replicas > 0)) ||
		usage_error "CAIRN_REPLICAS must be a number of copies (at least 1), got '$replicas'"
	command -v go >/dev/null || die "the go command is not on PATH; it is needed to build cairn"
	command -v setsid >/dev/null || die "setsid (util-linux) is not on PATH"
	[[ -e /dev/fuse ]] || die "/dev/fuse does not exist; cairn needs FUSE"

	mkdir -p -- "$1" || die "cannot create $1"
	local dir mnt name i pid
	dir=$(abspath "$1")
	[[ -e $2 && ! -d $2 ]] && die "mountpoint $2 exists and is not a directory"
	mkdir -p -- "$2" 2>/dev/null || die "cannot create mountpoint $2 (is it a stale mount? try: umount -l $2)"
	mnt=$(abspath "$2" 2>/dev/null) || die "mountpoint $2 is not usable (a stale mount? try: umount -l $2)"
	[[ $mnt == "$dir" || $mnt == "$dir"/* ]] && die "mountpoint $mnt must not be inside DIR $dir"
	is_mounted "$mnt" && die "mountpoint $mnt is already in use (see /proc/mounts)"
	for name in meta $(seq -f 'chunk%g' 1 "$nchunks") mount; do
		if pid=$(ours "$dir" "$name"); then
			die "a cluster is already running in $dir ($name has PID $pid); stop it with: $prog stop $dir"
		fi
	done

	mkdir -p "$dir/logs" "$dir/pids"
	rm -f "$dir"/pids/*.pid
	echo "building cairn into $dir/cairn"
	(cd "$repo" && go build -o "$dir/cairn" ./cmd/cairn) || die "go build failed in $repo"

	local addr=127.0.0.1:$port
	echo "$addr" >"$dir/meta-addr"
	echo "$mnt" >"$dir/mountpoint"
	echo "$nchunks" >"$dir/chunks"

	# From here on, any failure (or Ctrl-C) stops whatever was started.
	start_dir=$dir
	trap 'exit 130' INT TERM
	trap start_failed EXIT

	local mark
	mark=$(lines "$dir/logs/meta.log")
	launch "$dir" meta meta --data "$dir/meta" --listen "$addr" --replicas "$replicas"
	wait_for "$dir" meta 20 "listening on $addr" log_has_since "$dir/logs/meta.log" "$mark" "metaserver listening on"
	for ((i = 1; i <= nchunks; i++)); do
		name=chunk$i
		mark=$(lines "$dir/logs/$name.log")
		launch "$dir" "$name" chunk --data "$dir/$name" --meta "$addr" --ca "$dir/meta/cluster.pem" --listen 127.0.0.1:0
		wait_for "$dir" "$name" 20 "registration with $addr" log_has_since "$dir/logs/$name.log" "$mark" "registered with"
	done
	# shellcheck disable=SC2086 # CAIRN_MOUNT_FLAGS is a list of flags
	launch "$dir" mount mount --meta "$addr" --ca "$dir/meta/cluster.pem" ${CAIRN_MOUNT_FLAGS:-} "$mnt"
	wait_for "$dir" mount 30 "mount at $mnt" is_mounted "$mnt"
	trap - EXIT INT TERM

	echo
	echo "cairn cluster running (data in $dir):"
	row() { printf '  %-14s %-22s PID %-8s log %s\n' "$@"; }
	row metaserver "$addr" "$(<"$dir/pids/meta.pid")" "$dir/logs/meta.log"
	for ((i = 1; i <= nchunks; i++)); do
		row "chunkserver $i" \
			"$(grep -o 'listening on [0-9.:]*' "$dir/logs/chunk$i.log" | tail -n 1 | cut -d' ' -f3)" \
			"$(<"$dir/pids/chunk$i.pid")" "$dir/logs/chunk$i.log"
	done
	row mount "$mnt" "$(<"$dir/pids/mount.pid")" "$dir/logs/mount.log"
	echo "  cluster CA     $dir/meta/cluster.pem"
	cat <<EOF

Status: $0 status $dir
Stop:   $0 stop $dir
EOF
}

cmd_stop() {
	[[ $# -eq 1 ]] || usage_error "stop wants 1 argument (DIR), got $#"
	[[ -d $1 ]] || die "$1 is not a directory"
	local dir
	dir=$(abspath "$1")
	[[ -d $dir/pids ]] || die "no cluster was started in $dir (no $dir/pids)"
	stop_cluster "$dir" || die "some processes did not stop; see $dir/logs"
	echo "cluster in $dir stopped"
}

cmd_status() {
	[[ $# -eq 1 ]] || usage_error "status wants 1 argument (DIR), got $#"
	[[ -d $1 ]] || die "$1 is not a directory"
	local dir addr
	dir=$(abspath "$1")
	[[ -x $dir/cairn && -f $dir/meta/cluster.pem ]] || die "no cluster in $dir (want $dir/cairn and $dir/meta/cluster.pem)"
	addr=127.0.0.1:$port
	[[ -f $dir/meta-addr ]] && addr=$(<"$dir/meta-addr")
	exec "$dir/cairn" status --meta "$addr" --ca "$dir/meta/cluster.pem"
}

case "${1:-}" in
-h | --help | help) usage ;;
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
status) shift; cmd_status "$@" ;;
"") usage_error "missing command (start, stop or status)" ;;
*) usage_error "unknown command '$1' (want start, stop or status)" ;;
esac
