package fs_test

// The model tester's data operations: fallocate, SEEK_DATA/SEEK_HOLE and
// writes through a shared mapping (see model_ops_test.go).

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

var fallocModes = []struct {
	mode uint32
	w    int
}{
	{unix.FALLOC_FL_PUNCH_HOLE | unix.FALLOC_FL_KEEP_SIZE, 40},
	{0, 20},
	{unix.FALLOC_FL_KEEP_SIZE, 15},
	{unix.FALLOC_FL_ZERO_RANGE, 10},
	{unix.FALLOC_FL_ZERO_RANGE | unix.FALLOC_FL_KEEP_SIZE, 10},
	{unix.FALLOC_FL_PUNCH_HOLE, 3}, // EINVAL: punching needs KEEP_SIZE
	// Not COLLAPSE_RANGE or INSERT_RANGE: the kernel refuses them for
	// FUSE (EOPNOTSUPP) before cairn sees them, and ext4 (6.15 on) sets
	// mtime and ctime even when it then refuses a misaligned range.
}

func (o modelOp) dataString() string {
	s := fmt.Sprintf("#%d", o.slot)
	switch o.kind {
	case opFallocate:
		return fmt.Sprintf("fallocate %s mode=%#x off=%s len=%s", s, o.flags, modelSizeString(o.off), modelSizeString(o.n))
	case opSeekData:
		return fmt.Sprintf("lseek     %s %s %s", s, modelSizeString(o.off), map[int]string{unix.SEEK_DATA: "SEEK_DATA", unix.SEEK_HOLE: "SEEK_HOLE"}[o.flags])
	default:
		return fmt.Sprintf("mmapwrite %s off=%s len=%s seed=%d msync=%v", s, modelSizeString(o.off), modelSizeString(o.n), o.seed, o.mode != 0)
	}
}

// dataOp fills in a data operation for the generator.
func (g *modelGen) dataOp(o *modelOp, local *modelSide) {
	size := g.fdSize(local, o.slot)
	switch o.kind {
	case opFallocate:
		total := 0
		for _, m := range fallocModes {
			total += m.w
		}
		x := g.r.IntN(total)
		for _, m := range fallocModes {
			if x < m.w {
				o.flags = int(m.mode)
				break
			}
			x -= m.w
		}
		o.off, o.n = g.offset(size), g.length()
	case opSeekData:
		o.flags = unix.SEEK_DATA
		if g.pct(50) {
			o.flags = unix.SEEK_HOLE
		}
		o.off = g.offset(size)
		if g.pct(10) {
			o.off = -1 - g.r.Int64N(10) // EINVAL (ENXIO on some kernels: compared)
		}
	case opMmapWrite:
		// Inside the file: writing a mapped page past the end is SIGBUS.
		o.off = g.r.Int64N(size + 1)
		o.n, o.seed = g.length(), g.r.Uint64()
		if g.pct(50) {
			o.mode = 1 // msync before munmap
		}
	}
}

// execData runs a data operation on one side.
func (s *modelSide) execData(o modelOp, fd int) opResult {
	var r opResult
	switch o.kind {
	case opFallocate:
		r.errno = modelErrno(unix.Fallocate(fd, uint32(o.flags), o.off, o.n))
	case opSeekData:
		r.seek = o.flags
		// Keep the descriptor's position: the two sides may answer
		// differently (see seekEqual) and later reads must not diverge.
		cur, err := unix.Seek(fd, 0, unix.SEEK_CUR)
		if err != nil {
			r.errno = modelErrno(err)
			return r
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			r.text, r.seek = "(directory: not sought)", 0
			return r
		}
		pos, err := unix.Seek(fd, o.off, o.flags)
		r.errno, r.ret, r.hasRet = modelErrno(err), pos, true
		if err == nil && o.flags == unix.SEEK_DATA && pos > o.off {
			// What SEEK_DATA skipped is a hole: it must read as zeros.
			n := min(pos-o.off, 4*modelMiB)
			buf := make([]byte, n)
			if k, err := unix.Pread(fd, buf, o.off); err == nil {
				for _, b := range buf[:k] {
					if b != 0 {
						r.text = "SEEK_DATA skipped bytes that are not zero"
						break
					}
				}
			}
		}
		if _, err := unix.Seek(fd, cur, unix.SEEK_SET); err != nil {
			r.text += " (position not restored)"
		}
	case opMmapWrite:
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			r.errno = modelErrno(err)
			return r
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			// How much would be mapped depends on the directory's size,
			// which differs between file systems.
			r.text = "(directory: not mapped)"
			return r
		}
		n := max(0, min(o.n, st.Size-o.off))
		r.ret, r.hasRet = n, true
		if n == 0 {
			return r
		}
		mapOff := o.off &^ (4096 - 1)
		r.errno = modelErrno(mapWrite(fd, mapOff, int(o.off-mapOff+n), []patch{{int(o.off - mapOff), modelData(o.seed, n)}}, o.mode != 0, o.user))
	}
	return r
}

// seekEqual compares SEEK_DATA/SEEK_HOLE answers, cairn's (r) with
// ext4's (o). Both report at 4 KiB block granularity and agree exactly
// on written, punched and truncated files; but ext4 counts ranges that
// fallocate allocated without writing (mode 0, KEEP_SIZE, ZERO_RANGE) as
// data, while cairn allocates nothing ahead and reports them as holes.
// So cairn's data is a subset of ext4's: its SEEK_DATA may land later
// (or find none: ENXIO, where ext4 finds allocated zeros) and its
// SEEK_HOLE earlier, never the other way. Every hole SEEK_DATA skips
// reads as zeros on both sides (checked in execData).
func (r opResult) seekEqual(o opResult) bool {
	if r.seek != o.seek || r.text != o.text {
		return false
	}
	if r.errno == o.errno && r.ret == o.ret {
		return true
	}
	switch {
	case r.seek == unix.SEEK_DATA && r.errno == syscall.ENXIO && o.errno == 0:
		return true
	case r.errno != 0 || o.errno != 0:
		return false
	case r.seek == unix.SEEK_DATA:
		return r.ret > o.ret
	default:
		return r.ret < o.ret
	}
}
