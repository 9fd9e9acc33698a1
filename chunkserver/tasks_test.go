package chunkserver

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
)

// TestRemoveKeepsYoungBlocks: remove deletes a block only if it was last
// put longer ago than minAge; a re-put makes it young again.
func TestRemoveKeepsYoungBlocks(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	data := []byte("some block")
	id := block.Sum(data)
	if err := s.put(id, data); err != nil {
		t.Fatal(err)
	}
	if freed, err := s.remove(id, time.Hour); err != nil || freed != -1 || !s.has(id) {
		t.Fatalf("remove of a young block: freed %d, err %v, has %v; want it kept", freed, err, s.has(id))
	}
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(s.path(id), old, old)
	if err := s.put(id, data); err != nil { // re-put: young again
		t.Fatal(err)
	}
	if freed, _ := s.remove(id, time.Hour); freed != -1 || !s.has(id) {
		t.Fatal("remove deleted a block re-put just now")
	}
	os.Chtimes(s.path(id), old, old)
	if freed, err := s.remove(id, time.Hour); err != nil || freed != int64(len(data)) || s.has(id) {
		t.Fatalf("remove of an old block: freed %d, err %v, has %v", freed, err, s.has(id))
	}
	if freed, err := s.remove(id, 0); err != nil || freed != -1 {
		t.Fatalf("remove of a missing block: freed %d, err %v", freed, err)
	}
}

// TestRecoverDeletes: a block caught renamed aside by a crash is put back.
func TestRecoverDeletes(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	data := []byte("kept across a crash")
	id := block.Sum(data)
	if err := s.put(id, data); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "deleting"), 0o700)
	if err := os.Rename(s.path(id), filepath.Join(dir, "deleting", id.String()+".0123")); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir)
	if err := s.recoverDeletes(); err != nil {
		t.Fatal(err)
	}
	if got, err := s.get(id); err != nil || string(got) != string(data) {
		t.Fatalf("after recovery: %q, %v", got, err)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "deleting")); len(left) != 0 {
		t.Fatalf("%d files left in deleting/", len(left))
	}
}
