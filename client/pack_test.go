package client_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
)

// TestScatteredWritesPacked: thousands of small overlapping writes all
// over a file read back right (before the flush, after it, and from a
// cold client), and are stored as a few packed blocks, not one each.
func TestScatteredWritesPacked(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{NoMount: true, Replicas: 1, Chunkservers: 1})
	ctx := context.Background()
	a, err := c.Client.Make(ctx, &wire.MakeReq{Parent: 1, Name: "f", Mode: 0o100644})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	const size = 6 << 20
	want := make([]byte, size)
	f := c.Client.Open(a.Ino)
	write := func(off int, n int) {
		buf := make([]byte, n)
		for i := range buf {
			buf[i] = byte(r.Uint32())
		}
		f.Write(uint64(off), buf)
		copy(want[off:], buf)
	}
	write(0, size) // a base layer of plain blocks
	check := func(when string) {
		t.Helper()
		got := make([]byte, size)
		n, err := f.Read(ctx, 0, got)
		if err != nil || n != size || !bytes.Equal(got, want) {
			t.Fatalf("%s: read %d bytes, err=%v, equal=%v", when, n, err, bytes.Equal(got, want))
		}
		for range 50 { // small reads too: slices of packs after the flush
			off, n := r.IntN(size-9000), 1+r.IntN(9000)
			got := make([]byte, n)
			if _, err := f.Read(ctx, uint64(off), got); err != nil || !bytes.Equal(got, want[off:off+n]) {
				t.Fatalf("%s: read [%d,+%d): err=%v", when, off, n, err)
			}
		}
	}
	if err := f.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	blocksBefore := countBlocks(t, c.Dir)
	const writes = 3000
	for i := range writes {
		n := 4096
		if i%10 == 0 {
			n = 1 + r.IntN(20000) // odd sizes, some overlapping their neighbours
		}
		write(r.IntN(size-n), n)
		if i == writes/2 {
			check("mid-way, unflushed")
		}
	}
	check("unflushed")
	if err := f.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	check("flushed")
	f.Release(ctx)
	if n := countBlocks(t, c.Dir) - blocksBefore; n > 8 {
		t.Fatalf("%d small writes stored as %d blocks, want a few packs", writes, n)
	}
	c.Restart(t)
	f = c.Client.Open(a.Ino)
	defer f.Release(ctx)
	check("cold client")
}

func countBlocks(t *testing.T, dir string) int {
	files, err := filepath.Glob(filepath.Join(dir, "chunk*", "blocks", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return len(files)
}
