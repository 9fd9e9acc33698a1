package metaserver

import (
	"fmt"
	"testing"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/wire"
)

// TestCountStoredOfOlderRecords opens a namespace whose inode records were
// written before they carried Stored (more of them than one batch
// rewrites) and checks that opening counts each file's stored bytes from
// its extents, leaves the other fields as they were, and does it once.
func TestCountStoredOfOlderRecords(t *testing.T) {
	dir := t.TempDir()
	s, err := openStore(dir, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	A := block.Sum([]byte("A"))
	sparse := mk(t, s, RootIno, "sparse", modeFile)
	commit(t, s, sparse.Ino, ext(0, 4096, A, 0, 8192), ext(1<<30, 1000, A, 4096, 8192))
	link := mk(t, s, RootIno, "link", modeLink)
	var files []uint64
	for i := range 2*countBatch + 5 {
		f := mk(t, s, RootIno, fmt.Sprint("f", i), modeFile)
		commit(t, s, f.Ino, ext(uint64(i), 7, A, 0, 8192))
		files = append(files, f.Ino)
	}
	// Rewrite every inode record as an older cairn wrote it: no Stored.
	var legacy int
	err = s.update(func(tx *txn) error {
		for _, ino := range append([]uint64{RootIno, sparse.Ino, link.Ino}, files...) {
			n, err := tx.getInode(ino)
			if err != nil {
				return err
			}
			b := wire.AppendString(wire.AppendU64(n.Attr.AppendWithoutStored(nil), n.Parent), n.Target)
			if err := tx.Set(inodeKey(ino), b); err != nil {
				return err
			}
			legacy++
		}
		return tx.Delete(keyStoredCounted)
	})
	if err != nil {
		t.Fatal(err)
	}
	before := attr(t, s, sparse.Ino)
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if s, err = openStore(dir, quietLog()); err != nil {
		t.Fatal(err)
	}
	defer s.close()

	if got := rawInode(t, s, sparse.Ino); got.legacyStored || got.Stored != 5096 || got.Size != 1<<30+1000 || got.Mtime != before.Mtime {
		t.Fatalf("sparse file after the count: %+v, want Stored 5096 and the rest as %+v", got, before)
	}
	for _, ino := range files {
		if got := rawInode(t, s, ino); got.legacyStored || got.Stored != 7 {
			t.Fatalf("inode %d after the count: Stored %d (legacy %v), want 7", ino, got.Stored, got.legacyStored)
		}
	}
	if got := rawInode(t, s, link.Ino); got.legacyStored || got.Target != "target" || got.Stored != 0 {
		t.Fatalf("symlink after the count: %+v", got)
	}
	if got := rawInode(t, s, RootIno); got.legacyStored {
		t.Fatal("root's record still lacks Stored")
	}
	err = s.view(func(tx *txn) error {
		v, err := tx.getU64(keyStoredCounted)
		if err == nil && v != 1 {
			err = fmt.Errorf("counted mark %d after the count", v)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d older records counted", legacy)
}
