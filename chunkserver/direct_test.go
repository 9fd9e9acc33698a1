package chunkserver

import (
	"bytes"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/cairn-fs/cairn/internal/block"
)

// TestPutSizesAroundAlignment: blocks of sizes around the direct I/O
// alignment, and a compressible one, are stored with their exact length
// and read back whole (internal/directio tests that ext4 writes them
// directly).
func TestPutSizesAroundAlignment(t *testing.T) {
	src := rand.NewChaCha8([32]byte{1})
	random := func(n int) []byte { b := make([]byte, n); src.Read(b); return b }
	blocks := [][]byte{{7}, random(4095), random(4096), random(4097), random(1<<20 + 1), random(block.MaxSize),
		bytes.Repeat([]byte("compressible "), 100_000)}

	dir := t.TempDir()
	s := openTestStore(t, dir)
	for _, data := range blocks {
		id := block.Sum(data)
		if err := s.put(id, data); err != nil {
			t.Fatalf("put %d bytes: %v", len(data), err)
		}
		fi, err := os.Stat(s.path(id))
		if err != nil {
			t.Fatal(err)
		}
		if want := len(encodeBlockFile(data)); fi.Size() != int64(want) {
			t.Errorf("block of %d bytes stored in %d bytes, want %d", len(data), fi.Size(), want)
		}
		if got, err := s.get(id); err != nil || !bytes.Equal(got, data) {
			t.Errorf("block of %d bytes read back: err %v, equal %v", len(data), err, bytes.Equal(got, data))
		}
	}
}
