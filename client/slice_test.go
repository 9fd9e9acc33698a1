package client_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
)

// TestRandomReadsVerified: random reads of a cold file (fetched as
// verified slices of blocks, not whole blocks) return the written bytes;
// a byte rotted on two of three replicas is read from the third, and
// rotted on all three it is an error, never wrong data.
func TestRandomReadsVerified(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{NoMount: true})
	ctx := context.Background()
	a, err := c.Client.Make(ctx, &wire.MakeReq{Parent: 1, Name: "f", Mode: 0o100644})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 10<<20+12345)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	f := c.Client.Open(a.Ino)
	f.Write(0, data)
	if err := f.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	f.Release(ctx)
	c.Restart(t) // a cold cache

	read := func(off, n int) ([]byte, error) {
		f := c.Client.Open(a.Ino)
		defer f.Release(ctx)
		buf := make([]byte, n)
		got, err := f.Read(ctx, uint64(off), buf)
		return buf[:got], err
	}
	for range 200 {
		off := r.IntN(len(data))
		n := 1 + r.IntN(70000)
		got, err := read(off, n)
		want := data[off:min(off+n, len(data))]
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read [%d,+%d): err=%v, %d bytes, equal=%v", off, n, err, len(got), bytes.Equal(got, want))
		}
	}

	// Rot one byte in the middle of the second block, not yet cached.
	const at = 4<<20 + 3<<20 + 5
	rot := func(chunk string) {
		t.Helper()
		files, _ := filepath.Glob(filepath.Join(c.Dir, chunk, "blocks", "*", "*"))
		n := 0
		for _, p := range files {
			if st, err := os.Stat(p); err != nil || st.Size() != 4<<20 {
				continue
			}
			fh, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			b := []byte{0}
			fh.ReadAt(b, at-4<<20)
			if b[0] == data[at] { // the second block, not the first
				fh.WriteAt([]byte{b[0] ^ 0x40}, at-4<<20)
				n++
			}
			fh.Close()
		}
		if n != 1 {
			t.Fatalf("%s: rotted %d copies, want 1", chunk, n)
		}
	}
	rot("chunk1")
	rot("chunk2")
	c.Restart(t)
	if got, err := read(at-100, 4096); err != nil || !bytes.Equal(got, data[at-100:at-100+4096]) {
		t.Fatalf("read across a byte rotted on two replicas: err=%v equal=%v", err, bytes.Equal(got, data[at-100:at-100+4096]))
	}
	rot("chunk3")
	c.Restart(t)
	if got, err := read(at-100, 4096); err == nil {
		t.Fatalf("read across a byte rotted on every replica returned %d bytes and no error", len(got))
	}
}
