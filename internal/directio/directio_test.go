package directio

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestWriteSizesAroundAlignment: files of sizes around the alignment, in
// one part and in two, read back exactly, written directly (on ext4 here,
// where direct I/O must be used), buffered, and past the Writer's size.
func TestWriteSizesAroundAlignment(t *testing.T) {
	src := rand.NewChaCha8([32]byte{1})
	random := func(n int) []byte { b := make([]byte, n); src.Read(b); return b }
	const max = 1 << 20
	w := NewWriter(max)
	dir := t.TempDir()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	const ext4 = 0xef53
	for i, size := range []int{0, 1, 4095, 4096, 4097, 3*Align + 100, max - 1, max, max + 1} {
		data := random(size)
		for _, split := range []int{0, size / 3} {
			for _, forceBuffered := range []bool{false, true} {
				p := filepath.Join(dir, "f")
				os.Remove(p)
				f, direct, err := Create(p)
				if forceBuffered { // as on a file system without direct I/O
					f, direct, err = openBuffered(p)
				}
				if err != nil {
					t.Fatal(err)
				}
				if st.Type == ext4 && !direct && !forceBuffered {
					t.Fatalf("new file on ext4: not opened for direct I/O")
				}
				if err := w.Write(f, direct, data[:split], data[split:]); err != nil {
					t.Fatalf("case %d: write %d bytes (split at %d): %v", i, size, split, err)
				}
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}
				if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, data) {
					t.Errorf("%d bytes split at %d (buffered %v) read back: %d bytes, err %v, equal %v",
						size, split, forceBuffered, len(got), err, bytes.Equal(got, data))
				}
			}
		}
	}
	if _, _, err := Create(filepath.Join(dir, "f")); !os.IsExist(err) {
		t.Errorf("Create of an existing file: %v, want it to exist", err)
	}
}

func openBuffered(path string) (*os.File, bool, error) {
	if err := os.Remove(path); err != nil {
		return nil, false, err
	}
	f, err := os.Create(path)
	return f, false, err
}
