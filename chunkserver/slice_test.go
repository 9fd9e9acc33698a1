package chunkserver

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"testing"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/wire"
)

// TestGetRange: a range of a stored block comes back as a slice that
// verifies against the block's ID; a copy that rotted is refused before
// its outboard is known and fails the client's check after.
func TestGetRange(t *testing.T) {
	s, err := openDiskStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, block.MaxSize-5) // incompressible, so stored raw: the rot below lands in it
	rand.Read(data)
	id := block.Sum(data)
	if err := s.put(id, data); err != nil {
		t.Fatal(err)
	}
	check := func(off, n uint64) {
		t.Helper()
		slice, err := s.getRange(id, off, n)
		if err != nil {
			t.Fatalf("getRange(%d, %d): %v", off, n, err)
		}
		got, ok := id.VerifySlice(slice, off, n)
		lo, alen := block.AlignSlice(off, n, uint64(len(data)))
		if !ok || !bytes.Equal(got, data[lo:lo+alen]) {
			t.Fatalf("getRange(%d, %d): verified %v, bytes equal %v", off, n, ok, bytes.Equal(got, data[lo:lo+alen]))
		}
		if len(slice) > int(alen)+2048 {
			t.Fatalf("getRange(%d, %d): slice of %d bytes for %d bytes of groups", off, n, len(slice), alen)
		}
	}
	check(0, 4096)            // computes the outboard from the whole block
	check(1<<20+100, 4096)    // reads just its groups
	check(block.MaxSize-9, 4) // the short last group
	if _, err := s.getRange(id, block.MaxSize-4, 10); !errors.Is(err, wire.ErrInvalid) {
		t.Fatalf("range past the end: err = %v, want invalid", err)
	}

	// Rot one byte on disk: the slice that carries it fails verification.
	f, err := os.OpenFile(s.path(id), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{data[2<<20] ^ 1}, 2<<20)
	f.Close()
	slice, err := s.getRange(id, 2<<20, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := id.VerifySlice(slice, 2<<20, 4096); ok {
		t.Fatal("a slice of a rotten copy verified")
	}
	// A store that has not sliced it yet refuses the rotten copy outright.
	s.outboards = newOutboards()
	if _, err := s.getRange(id, 0, 4096); !errors.Is(err, wire.ErrCorrupt) {
		t.Fatalf("rotten copy, fresh outboard cache: err = %v, want corrupt", err)
	}
}
