package metaserver

import (
	"errors"
	"testing"

	"github.com/cairn-fs/cairn/internal/wire"
)

// TestOpenDirectoryRemoved: an rmdir of a directory the caller has open
// keeps its inode, with no links and nothing creatable in it, until purge.
func TestOpenDirectoryRemoved(t *testing.T) {
	s := newStore(t)
	d := mk(t, s, RootIno, "d", modeDir)
	setX(t, s, d.Ino, "user.x", "1")
	gone, _, err := s.remove(&wire.RemoveReq{Parent: RootIno, Name: "d", Dir: true, Open: []uint64{d.Ino}})
	if err != nil {
		t.Fatal(err)
	}
	if gone.Ino != d.Ino || gone.Nlink != 0 {
		t.Fatalf("remove returned %+v, want inode %d with nlink 0", gone, d.Ino)
	}
	if a := attr(t, s, d.Ino); a.Nlink != 0 || a.Mode != d.Mode {
		t.Errorf("removed open directory: nlink %d mode %#o", a.Nlink, a.Mode)
	}
	if nlink(t, s, RootIno) != 2 {
		t.Errorf("root nlink %d after rmdir, want 2", nlink(t, s, RootIno))
	}
	if _, _, err := s.make(&wire.MakeReq{Parent: d.Ino, Name: "x", Mode: modeFile}); !errors.Is(err, wire.ErrNotFound) {
		t.Errorf("create in a removed directory: %v, want not found", err)
	}
	if _, err := s.readDir(&wire.ReadDirReq{Ino: d.Ino}); !errors.Is(err, wire.ErrNotFound) {
		t.Errorf("list a removed directory: %v, want not found", err)
	}
	if err := s.purge(d.Ino); err != nil {
		t.Fatal(err)
	}
	if _, err := s.getAttr(d.Ino); !errors.Is(err, wire.ErrNotFound) {
		t.Errorf("after purge: %v", err)
	}
	if n := xattrKeys(t, s, d.Ino); n != 0 {
		t.Errorf("after purge: %d xattrs left", n)
	}
	// Not open: gone at once, and nothing to report.
	e := mk(t, s, RootIno, "e", modeDir)
	if gone, _, err := s.remove(&wire.RemoveReq{Parent: RootIno, Name: "e", Dir: true}); err != nil || gone.Ino != 0 {
		t.Fatalf("rmdir: %+v, %v", gone, err)
	}
	if _, err := s.getAttr(e.Ino); !errors.Is(err, wire.ErrNotFound) {
		t.Errorf("removed closed directory: %v", err)
	}
}

// TestLinkLimit: a file has at most 65000 links, as on ext4 (EMLINK).
func TestLinkLimit(t *testing.T) {
	s := newStore(t)
	f := mk(t, s, RootIno, "f", modeFile)
	err := s.update(func(tx *txn) error {
		n, err := tx.getInode(f.Ino)
		if err != nil {
			return err
		}
		n.Nlink = 64999 // as if that many links had been made
		return tx.putInode(n)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.link(&wire.LinkReq{Ino: f.Ino, Parent: RootIno, Name: "l65000"}); err != nil {
		t.Fatalf("link number 65000: %v", err)
	}
	_, _, err = s.link(&wire.LinkReq{Ino: f.Ino, Parent: RootIno, Name: "l65001"})
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeMlink {
		t.Fatalf("link number 65001: %v, want too many links", err)
	}
}
