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
	ext4 := onExt4(t, dir)
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
				if ext4 && !direct && !forceBuffered {
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

// TestReadAtRangesAroundAlignment: every range whose ends fall around an
// alignment boundary or the end of the file reads back exactly, directly
// and buffered, and a range past the end is an error, not short bytes.
func TestReadAtRangesAroundAlignment(t *testing.T) {
	data := make([]byte, 3*Align+100)
	rand.NewChaCha8([32]byte{2}).Read(data)
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	edges := []int{0, 1, 8, Align - 1, Align, Align + 1, 2*Align + 7, len(data) - 1, len(data)}
	for _, wantDirect := range []bool{true, false} {
		f, direct, err := Open(p)
		if !wantDirect {
			f.Close()
			f, err = os.Open(p)
			direct = false
		}
		if err != nil {
			t.Fatal(err)
		}
		if wantDirect && onExt4(t, p) && !direct {
			t.Fatalf("file on ext4: not opened for direct I/O")
		}
		for _, off := range edges {
			for _, end := range edges {
				if end < off {
					continue
				}
				got, err := ReadAt(f, direct, int64(off), end-off)
				if err != nil || !bytes.Equal(got, data[off:end]) {
					t.Errorf("direct %v: [%d, %d): %d bytes, err %v, equal %v", direct, off, end, len(got), err, bytes.Equal(got, data[off:end]))
				}
			}
		}
		if _, err := ReadAt(f, direct, int64(len(data)-10), 11); err == nil {
			t.Errorf("direct %v: a range one byte past the end read without error", direct)
		}
		f.Close()
	}
}

// onExt4 reports whether path is on ext4, where direct I/O must work.
func onExt4(t *testing.T, path string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Type == 0xef53
}
