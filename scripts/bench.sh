#!/usr/bin/env bash
# bench.sh runs the fio jobs in scripts/fio on each directory given, back
# to back, and prints a table of throughput and IOPS. The first directory
# is the baseline: every other column shows its ratio to it (and to the
# second, when there are three or more, e.g. local, passthrough, cairn).
#
#   scripts/bench.sh [--size 1G] [--runtime 20] [--json FILE] DIR...
#
# Reads run after dropping the kernel page cache (needs root).
set -euo pipefail

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
size=1G
runtime=20
json=""
while [ $# -gt 0 ]; do
	case "$1" in
	-h | --help) usage; exit 0 ;;
	--size) size=$2; shift 2 ;;
	--runtime) runtime=$2; shift 2 ;;
	--json) json=$2; shift 2 ;;
	--) shift; break ;;
	-*) echo "bench.sh: unknown flag $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -ge 1 ] || { usage >&2; exit 2; }
command -v fio >/dev/null || { echo "bench.sh: fio is not installed (apt-get install -y fio)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench.sh: python3 is needed to read fio's JSON" >&2; exit 1; }
for d in "$@"; do
	[ -d "$d" ] || { echo "bench.sh: $d is not a directory" >&2; exit 1; }
done
jobs="$(cd "$(dirname "$0")/fio" && pwd)"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

dropcaches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

i=0
for d in "$@"; do
	i=$((i + 1))
	for job in seqwrite seqread randread randwrite; do
		printf '\rbench: %-40s %-10s' "$d" "$job" >&2
		dropcaches
		SIZE=$size RANDSIZE=256M RUNTIME=$runtime fio --output-format=json --directory="$d" "$jobs/$job.fio" >"$out/$i.$job.json"
	done
	rm -f "$d/bench.seq" "$d/bench.rand"
done
printf '\r%-60s\r' "" >&2

python3 - "$out" "$json" "$@" <<'PY'
import json, sys
out, jsonpath, dirs = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = [("seq write MiB/s", "seqwrite", "write", "bw"), ("seq read MiB/s", "seqread", "read", "bw"),
        ("rand read 4k IOPS", "randread", "read", "iops"), ("rand write 4k IOPS", "randwrite", "write", "iops")]
res = []
for i, d in enumerate(dirs, 1):
    res.append({"dir": d})
    for label, job, kind, field in rows:
        j = json.load(open(f"{out}/{i}.{job}.json"))
        v = sum(job_[kind][field] for job_ in j["jobs"])
        res[-1][label] = v / 1024 if field == "bw" else v
head = ["figure"] + dirs
for k in range(1, len(dirs)):
    head.append(f"{k+1}/1")
if len(dirs) >= 3:
    head += [f"{k+1}/2" for k in range(2, len(dirs))]
w = max(len(h) for h in head + [r[0] for r in rows]) + 2
print("".join(h.ljust(w) for h in head))
for label, *_ in rows:
    vals = [r[label] for r in res]
    cells = [label] + [f"{v:.1f}" for v in vals]
    cells += [f"{vals[k]/vals[0]:.2f}" if vals[0] else "-" for k in range(1, len(dirs))]
    if len(dirs) >= 3:
        cells += [f"{vals[k]/vals[1]:.2f}" if vals[1] else "-" for k in range(2, len(dirs))]
    print("".join(c.ljust(w) for c in cells))
if jsonpath:
    json.dump(res, open(jsonpath, "w"), indent=2)
PY
