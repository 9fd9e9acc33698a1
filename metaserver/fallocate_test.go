package metaserver

import (
	"testing"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/wire"
)

// TestFallocate: allocating grows the size only, punching drops the
// range's extents and the references of blocks nothing else uses, and
// zeroing does both; bad modes and ranges are refused.
func TestFallocate(t *testing.T) {
	s := newStore(t)
	f := mk(t, s, RootIno, "f", modeFile)
	A, B := block.Sum([]byte("A")), block.Sum([]byte("B"))
	commit(t, s, f.Ino, ext(0, 100, A, 0, 100), ext(100, 100, B, 0, 100))
	fa := func(mode uint32, off, n uint64) (wire.Attr, error) {
		return s.fallocate(&wire.FallocateReq{Ino: f.Ino, Mode: mode, Off: off, Len: n})
	}
	if a, err := fa(0, 150, 1000); err != nil || a.Size != 1150 {
		t.Fatalf("allocate past the end: size %d, %v", a.Size, err)
	}
	if a, err := fa(wire.FallocKeepSize, 5000, 1000); err != nil || a.Size != 1150 {
		t.Fatalf("allocate keeping the size: size %d, %v", a.Size, err)
	}
	if a, err := fa(wire.FallocPunchHole|wire.FallocKeepSize, 50, 150); err != nil || a.Size != 1150 {
		t.Fatalf("punch: size %d, %v", a.Size, err)
	}
	if refCount(t, s, A) != 1 || refCount(t, s, B) != 0 || !hasGarbage(t, s, B) {
		t.Fatalf("after punching B's whole extent: A %d B %d", refCount(t, s, A), refCount(t, s, B))
	}
	l, err := s.layout(f.Ino)
	if err != nil || len(l.Extents) != 1 || l.Extents[0].Len != 50 {
		t.Fatalf("layout after the punch: %+v %v", l, err)
	}
	if a, err := fa(wire.FallocZeroRange, 0, 2000); err != nil || a.Size != 2000 || refCount(t, s, A) != 0 {
		t.Fatalf("zero range: size %d refs %d, %v", a.Size, refCount(t, s, A), err)
	}
	for _, bad := range []struct {
		mode   uint32
		off, n uint64
	}{
		{wire.FallocPunchHole, 0, 10}, // punch needs keep-size
		{wire.FallocPunchHole | wire.FallocZeroRange | wire.FallocKeepSize, 0, 10}, // not both
		{0x08, 0, 4096},       // collapse
		{0, 10, 0},            // empty
		{0, 1 << 63, 1 << 63}, // past the largest offset
	} {
		if _, err := fa(bad.mode, bad.off, bad.n); err == nil {
			t.Errorf("fallocate mode %#x %d+%d accepted", bad.mode, bad.off, bad.n)
		}
	}
	d := mk(t, s, RootIno, "d", modeDir)
	if _, err := s.fallocate(&wire.FallocateReq{Ino: d.Ino, Len: 1}); err == nil {
		t.Error("fallocate on a directory accepted")
	}
	checkRefs(t, s, A, B)
}
