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

// TestBlockFiles: a block that compresses is stored compressed and one
// that does not is stored as its bytes; either way get and getRange give
// back the block, and a damaged file is refused as corrupt.
func TestBlockFiles(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	text := bytes.Repeat([]byte("func main() { fmt.Println(\"hello, cairn\") }\n"), 100_000)[:block.MaxSize-3]
	noise := make([]byte, 1<<20)
	rand.Read(noise)
	framed := append(append([]byte{}, blockMagic[:]...), noise[:100_000]...) // raw, but looks like a header
	for _, c := range []struct {
		name       string
		data       []byte
		compressed bool
	}{{"text", text, true}, {"noise", noise, false}, {"framed", framed, false}} {
		id := block.Sum(c.data)
		if err := s.put(id, c.data); err != nil {
			t.Fatal(err)
		}
		file, err := os.ReadFile(s.path(id))
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case c.compressed && len(file) > len(c.data)/2:
			t.Errorf("%s: stored in %d bytes for %d", c.name, len(file), len(c.data))
		case !c.compressed && c.name == "noise" && !bytes.Equal(file, c.data):
			t.Errorf("%s: incompressible block not stored as its bytes", c.name)
		}
		if got, err := s.get(id); err != nil || !bytes.Equal(got, c.data) {
			t.Fatalf("%s: get: %v", c.name, err)
		}
		for _, fresh := range []bool{true, false} { // outboard computed, then cached
			if fresh {
				s.outboards = newOutboards()
			}
			off, n := uint64(len(c.data)/2+7), uint64(5000)
			slice, err := s.getRange(id, off, n)
			if err != nil {
				t.Fatalf("%s: getRange: %v", c.name, err)
			}
			got, ok := id.VerifySlice(slice, off, n)
			lo, alen := block.AlignSlice(off, n, uint64(len(c.data)))
			if !ok || !bytes.Equal(got, c.data[lo:lo+alen]) {
				t.Fatalf("%s: getRange slice verified %v", c.name, ok)
			}
		}
		// Damage the stored file in its middle.
		file[len(file)/2] ^= 0xff
		if err := os.WriteFile(s.path(id), file, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := s.get(id); !errors.Is(err, wire.ErrCorrupt) {
			t.Fatalf("%s: damaged file: get = %v, want corrupt", c.name, err)
		}
	}
}

// FuzzDecodeBlockFile: whatever is on disk, decoding returns an error or
// at most a block's worth of bytes, and never panics.
func FuzzDecodeBlockFile(f *testing.F) {
	f.Add(encodeBlockFile(bytes.Repeat([]byte("abc"), 10_000)))
	f.Add(append(blockMagic[:], formatRaw, 1, 2, 3))
	f.Add(append(blockMagic[:], 9))
	f.Fuzz(func(t *testing.T, file []byte) {
		data, err := decodeBlockFile(file)
		if err == nil && len(data) > block.MaxSize+len(file) {
			t.Fatalf("decoded %d bytes from %d", len(data), len(file))
		}
	})
}
