package chunkserver

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/wire"
)

// TestRecoverTmp builds what a power cut can leave in tmp/ and checks
// that reopening the store puts the whole, fsynced block files into
// place (their puts may have been acknowledged before the rename reached
// the disk) and removes the rest.
func TestRecoverTmp(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	whole := bytes.Repeat([]byte("acknowledged "), 500)
	torn := bytes.Repeat([]byte("torn "), 500)
	placed := bytes.Repeat([]byte("already in place "), 500)
	wholeID, tornID, placedID := block.Sum(whole), block.Sum(torn), block.Sum(placed)
	if err := s.put(placedID, placed); err != nil {
		t.Fatal(err)
	}
	tmp := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, "tmp", name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tmp(wholeID.String()+".0123456789abcdef", whole)
	tmp(tornID.String()+".0123456789abcdef", torn[:len(torn)/2])
	tmp(placedID.String()+".0123456789abcdef", placed)
	tmp("0123456789abcdef", whole) // the format before IDs were in the name
	s = openTestStore(t, dir)
	if got, err := s.get(wholeID); err != nil || !bytes.Equal(got, whole) {
		t.Fatalf("whole block in tmp/ not recovered: %v", err)
	}
	if _, err := s.get(tornID); !errors.Is(err, wire.ErrNotFound) {
		t.Fatalf("torn block in tmp/: get = %v, want not found", err)
	}
	if got, err := s.get(placedID); err != nil || !bytes.Equal(got, placed) {
		t.Fatalf("block in place: %v", err)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
		t.Fatalf("%d files left in tmp/", len(left))
	}
}
