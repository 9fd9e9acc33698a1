#!/usr/bin/env bash
# bench.sh measures each directory given, back to back, and prints a table:
# fio sequential and random jobs (scripts/fio), a metadata benchmark
# (scripts/metabench: create, stat, rename, unlink of empty files in ten
# directories), and the time to untar Go's source tree, find and du it,
# and rm -rf it. The first directory is the baseline: every other column
# shows its ratio to it (and to the second, when there are three or more,
# e.g. local, passthrough, cairn). Ratios of times (s) are lower-is-better.
#
#   scripts/bench.sh [--quick] [--size 1G] [--runtime 20] [--files 10000]
#                    [--rounds 1] [--only fio|meta|tree] [--json FILE] DIR...
#
# --quick is a short run (256M, 5 s jobs, 2000 files, a smaller tree).
# --rounds N measures every directory N times, round by round, and shows
# the median of each figure.
# Reads run after dropping the kernel page cache (needs root). A FUSE
# passthrough to compare with: go install
# github.com/hanwen/go-fuse/v2/example/loopback@v2.12.1, then
# loopback MOUNTPOINT ORIGINAL_DIR.
set -euo pipefail

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }
size=1G
runtime=20
files=10000
rounds=1
tree=/usr/local/go/src
only=""
json=""
while [ $# -gt 0 ]; do
	case "$1" in
	-h | --help) usage; exit 0 ;;
	--quick) size=256M; runtime=5; files=2000; tree=/usr/local/go/src/net; shift ;;
	--size) size=$2; shift 2 ;;
	--runtime) runtime=$2; shift 2 ;;
	--files) files=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	--json) json=$2; shift 2 ;;
	--) shift; break ;;
	-*) echo "bench.sh: unknown flag $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -ge 1 ] || { usage >&2; exit 2; }
case "$only" in "" | fio | meta | tree) ;; *) echo "bench.sh: --only takes fio, meta or tree" >&2; exit 2 ;; esac
want() { [ -z "$only" ] || [ "$only" = "$1" ]; }
if want fio; then
	command -v fio >/dev/null || { echo "bench.sh: fio is not installed (apt-get install -y fio)" >&2; exit 1; }
fi
command -v python3 >/dev/null || { echo "bench.sh: python3 is needed to make the table" >&2; exit 1; }
for d in "$@"; do
	[ -d "$d" ] || { echo "bench.sh: $d is not a directory" >&2; exit 1; }
done
here="$(cd "$(dirname "$0")" && pwd)"
jobs="$here/fio"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

if want meta; then
	(cd "$here/.." && go build -o "$out/metabench" ./scripts/metabench) || { echo "bench.sh: cannot build scripts/metabench" >&2; exit 1; }
fi
if want tree; then
	[ -d "$tree" ] || { echo "bench.sh: $tree (the tree to untar) does not exist" >&2; exit 1; }
	tarball="$out/tree.tar"
	tar -C "$(dirname "$tree")" -cf "$tarball" "$(basename "$tree")"
fi

dropcaches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
progress() { printf '\rbench: %-40s %-12s' "$1" "$2" >&2; }
# timed FILE CMD... runs CMD and writes its wall time in seconds to FILE.
timed() {
	local file=$1 start end
	shift
	start=$(date +%s.%N)
	"$@" >/dev/null
	end=$(date +%s.%N)
	python3 -c "print($end - $start)" >"$file"
}

for round in $(seq 1 "$rounds"); do
i=0
for d in "$@"; do
	i=$((i + 1))
	r="$round.$i" # results of this round on this directory: $out/$r.*
	[ "$rounds" = 1 ] || d_shown="$d (round $round/$rounds)"
	if want fio; then
		for job in seqwrite seqread randread randwrite; do
			progress "${d_shown:-$d}" "$job"
			dropcaches
			SIZE=$size RANDSIZE=256M RUNTIME=$runtime fio --output-format=json --directory="$d" "$jobs/$job.fio" >"$out/$r.$job.json"
		done
		rm -f "$d/bench.seq" "$d/bench.rand"
	fi
	if want meta; then
		progress "${d_shown:-$d}" "metadata"
		"$out/metabench" -files "$files" -dirs 10 "$d" >"$out/$r.meta.json"
	fi
	if want tree; then
		t="$d/bench.tree"
		rm -rf "$t"
		mkdir "$t"
		dropcaches
		progress "${d_shown:-$d}" "untar"
		timed "$out/$r.untar" tar -C "$t" -xf "$tarball"
		dropcaches
		progress "${d_shown:-$d}" "find"
		timed "$out/$r.find" find "$t"
		dropcaches
		progress "${d_shown:-$d}" "du"
		timed "$out/$r.du" du -s "$t"
		dropcaches
		progress "${d_shown:-$d}" "rm -rf"
		timed "$out/$r.rm" rm -rf "$t"
	fi
done
done
printf '\r%-60s\r' "" >&2

python3 - "$out" "$json" "$rounds" "$@" <<'PY'
import json, os, statistics, sys
out, jsonpath, rounds, dirs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
def median(one):
    # one(r) reads a figure from the results of round r on one directory.
    return lambda i: statistics.median(one(f"{r}.{i}") for r in range(1, rounds + 1))
def fio(job, kind, field):
    def get(r):
        j = json.load(open(f"{out}/{r}.{job}.json"))
        v = sum(job_[kind][field] for job_ in j["jobs"])
        return v / 1024 if field == "bw" else v
    return median(get), f"{out}/1.1.{job}.json"
def meta(op):
    return median(lambda r: json.load(open(f"{out}/{r}.meta.json"))[op]), f"{out}/1.1.meta.json"
def secs(name):
    return median(lambda r: float(open(f"{out}/{r}.{name}").read())), f"{out}/1.1.{name}"
rows = [("seq write MiB/s",) + fio("seqwrite", "write", "bw"), ("seq read MiB/s",) + fio("seqread", "read", "bw"),
        ("rand read 4k IOPS",) + fio("randread", "read", "iops"), ("rand write 4k IOPS",) + fio("randwrite", "write", "iops"),
        ("create ops/s",) + meta("create"), ("stat ops/s",) + meta("stat"),
        ("rename ops/s",) + meta("rename"), ("unlink ops/s",) + meta("unlink"),
        ("untar s",) + secs("untar"), ("find s",) + secs("find"), ("du s",) + secs("du"), ("rm -rf s",) + secs("rm")]
rows = [r for r in rows if os.path.exists(r[2])]
res = [{"dir": d} for d in dirs]
for label, get, _ in rows:
    for i in range(len(dirs)):
        res[i][label] = get(i + 1)
head = ["figure"] + dirs
head += [f"{k+1}/1" for k in range(1, len(dirs))]
if len(dirs) >= 3:
    head += [f"{k+1}/2" for k in range(2, len(dirs))]
w = max(len(h) for h in head + [r[0] for r in rows]) + 2
print("".join(h.ljust(w) for h in head))
for label, *_ in rows:
    vals = [r[label] for r in res]
    cells = [label] + [f"{v:.2f}" if label.endswith(" s") else f"{v:.1f}" for v in vals]
    cells += [f"{vals[k]/vals[0]:.2f}" if vals[0] else "-" for k in range(1, len(dirs))]
    if len(dirs) >= 3:
        cells += [f"{vals[k]/vals[1]:.2f}" if vals[1] else "-" for k in range(2, len(dirs))]
    print("".join(c.ljust(w) for c in cells))
if jsonpath:
    json.dump(res, open(jsonpath, "w"), indent=2)
PY
