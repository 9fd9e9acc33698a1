#!/usr/bin/env bash
# memwatch.sh measures the memory of the processes of a cluster started by
# scripts/cluster.sh (their PIDs are in DIR/pids). See 'memwatch.sh --help'.
set -euo pipefail

prog=$(basename "$0")

usage() {
	cat <<EOF
Usage:
  $prog reset DIR           reset each process's peak RSS (VmHWM), to measure one workload
  $prog sample DIR SECONDS  print each process's RSS in MiB every SECONDS until stopped
  $prog peak DIR            print each process's peak RSS (VmHWM) and its RSS now,
                            split into anonymous memory (the heap) and mapped files
                            (Badger's tables: page cache the kernel can reclaim)

DIR is the directory given to 'scripts/cluster.sh start DIR MOUNTPOINT'.
EOF
}

die() {
	echo "$prog: $*" >&2
	exit 1
}

# procs DIR: "NAME PID" for each running process of the cluster.
procs() {
	local f name pid
	for f in "$1"/pids/meta.pid "$1"/pids/chunk*.pid "$1"/pids/mount.pid; do
		[[ -f $f ]] || continue
		name=$(basename "$f" .pid)
		pid=$(<"$f")
		[[ -r /proc/$pid/status ]] && echo "$name $pid"
	done
}

# kib PID FIELD: a field of /proc/PID/status, in KiB.
kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

mib() { echo $((($1 + 512) / 1024)); }

[[ $# -ge 1 ]] || {
	usage >&2
	exit 2
}
case $1 in
-h | --help | help)
	usage
	exit 0
	;;
esac
[[ $# -ge 2 && -d $2/pids ]] || die "want a cluster directory with pids/ (from scripts/cluster.sh start)"
dir=$2
case $1 in
reset)
	procs "$dir" | while read -r name pid; do
		echo 5 >"/proc/$pid/clear_refs" # 5: reset the peak RSS
	done
	;;
sample)
	[[ ${3:-} =~ ^[0-9]+$ ]] || die "sample wants an interval in seconds"
	while :; do
		line=$(date +%T)
		while read -r name pid; do
			line+=" $name=$(mib "$(kib "$pid" VmRSS)")"
		done < <(procs "$dir")
		echo "$line"
		sleep "$3"
	done
	;;
peak)
	printf '%-8s %8s %10s %10s %10s %10s\n' PROCESS PID PEAK_MiB RSS_MiB ANON_MiB FILE_MiB
	procs "$dir" | while read -r name pid; do
		printf '%-8s %8s %10s %10s %10s %10s\n' "$name" "$pid" "$(mib "$(kib "$pid" VmHWM)")" "$(mib "$(kib "$pid" VmRSS)")" \
			"$(mib "$(kib "$pid" RssAnon)")" "$(mib "$(kib "$pid" RssFile)")"
	done
	;;
*)
	usage >&2
	exit 2
	;;
esac
