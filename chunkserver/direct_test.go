package chunkserver

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/directio"
)

// TestPutSizesAroundAlignment: blocks of sizes around the direct I/O
// alignment, and a compressible one, are stored with their exact length
// and read back whole, written directly (on ext4 here) and buffered.
func TestPutSizesAroundAlignment(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	blocks := [][]byte{{7}, random(4095), random(4096), random(4097), random(1<<20 + 1), random(block.MaxSize),
		bytes.Repeat([]byte("compressible "), 100_000)}

	dir := t.TempDir()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	const ext4 = 0xef53
	if _, direct, err := directio.Create(filepath.Join(dir, "probe")); err != nil || (st.Type == ext4 && !direct) {
		t.Fatalf("new block file on ext4: direct I/O %v (%v), want it", direct, err)
	}
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
