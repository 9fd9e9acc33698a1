package metaserver

import (
	"syscall"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/wire"
)

// TestCommitManyOverlapping: batches of small, overlapping writes (what
// random 4 KiB writes commit) give, byte for byte, the layout of applying
// them one by one, with exact reference counts.
func TestCommitManyOverlapping(t *testing.T) {
	s := newStore(t)
	ino := mk(t, s, RootIno, "f", syscall.S_IFREG|0o644).Ino
	r := newRand(7)
	const size = 1 << 16
	type src struct {
		id  block.ID
		off uint32
	}
	want := make([]src, size) // what each byte of the file maps to
	var seen []block.ID
	for batch := range 20 {
		var es []wire.Extent
		for range 1 + r.IntN(300) {
			id := block.Sum([]byte{byte(batch), byte(r.IntN(8))}) // few blocks: shared refs
			blen := uint32(8192)
			off := uint64(r.IntN(size - 1))
			n := uint32(1 + r.IntN(min(int(size-off), 3000)))
			boff := uint32(r.IntN(int(blen - n + 1)))
			es = append(es, ext(off, n, id, boff, blen))
			for i := range uint64(n) {
				want[off+i] = src{id, boff + uint32(i)}
			}
			seen = append(seen, id)
		}
		commit(t, s, ino, es...)
		l, err := s.layout(ino)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]src, size)
		for _, e := range l.Extents {
			for i := range uint64(e.Len) {
				got[e.Off+i] = src{e.Block, e.BlockOff + uint32(i)}
			}
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("batch %d: byte %d maps to %s+%d, want %s+%d", batch, i, got[i].id.Short(), got[i].off, want[i].id.Short(), want[i].off)
			}
		}
		checkRefs(t, s, seen...)
	}
}

// TestCommitLarge: one commit of 50,000 small extents (a random writer's
// fsync) is applied in well under the client's call timeout.
func TestCommitLarge(t *testing.T) {
	s := newStore(t)
	ino := mk(t, s, RootIno, "f", syscall.S_IFREG|0o644).Ino
	r := newRand(8)
	pack := block.Sum([]byte("pack"))
	es := make([]wire.Extent, 50_000)
	for i := range es {
		es[i] = ext(uint64(r.IntN(1<<16))*4096, 4096, pack, uint32(i%1024)*4096, block.MaxSize)
	}
	start := time.Now()
	commit(t, s, ino, es...)
	commit(t, s, ino, es[:len(es)/2]...) // over an existing fragmented layout
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("two commits of %d extents took %v", len(es), d)
	}
	checkRefs(t, s, pack)
	// Removing the file drops every extent in one transaction.
	if err := unlink(s, RootIno, "f"); err != nil {
		t.Fatalf("unlink a file of many extents: %v", err)
	}
	checkRefs(t, s, pack)
}
