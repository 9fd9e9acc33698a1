package metaserver

import (
	"slices"
	"syscall"
	"testing"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/wire"
)

// TestTmpfile: a file made with no name (O_TMPFILE) is an orphan of its
// session from the start; it may be linked into place, which ends its
// orphanhood, and is purged like any orphan otherwise.
func TestTmpfile(t *testing.T) {
	s := newStore(t)
	d := mk(t, s, RootIno, "d", modeDir|syscall.S_ISGID)
	if _, err := s.setAttr(&wire.SetAttrReq{Ino: d.Ino, Valid: wire.SetGid, Gid: 77}); err != nil {
		t.Fatal(err)
	}
	const session = 7
	owned := func() []uint64 {
		t.Helper()
		inos, err := s.orphans(func(owner uint64) bool { return owner == session })
		if err != nil {
			t.Fatal(err)
		}
		return inos
	}
	tmp := func() wire.Attr {
		t.Helper()
		a, err := s.tmpfile(&wire.TmpfileReq{Parent: d.Ino, Mode: 0o666, Uid: 1, Gid: 5, Umask: 0o022, Session: session})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	kept := tmp()
	if kept.Nlink != 0 || kept.Mode != syscall.S_IFREG|0o644 || kept.Uid != 1 || kept.Gid != 77 {
		t.Fatalf("tmpfile: %+v; want nlink 0, mode %#o, owner 1:77 (the setgid directory's group)", kept, syscall.S_IFREG|0o644)
	}
	if n := names(t, s, d.Ino); len(n) != 0 {
		t.Fatalf("the directory lists %v after a tmpfile", n)
	}
	if !slices.Contains(owned(), kept.Ino) {
		t.Fatal("the tmpfile is not an orphan of its session")
	}
	id := block.Sum([]byte("tmpfile data"))
	commit(t, s, kept.Ino, ext(0, 100, id, 0, 100))

	linked, _, err := s.link(&wire.LinkReq{Ino: kept.Ino, Parent: d.Ino, Name: "named"})
	if err != nil || linked.Nlink != 1 || linked.Size != 100 {
		t.Fatalf("link the tmpfile: %+v %v", linked, err)
	}
	if lookupIno(t, s, d.Ino, "named") != kept.Ino || slices.Contains(owned(), kept.Ino) {
		t.Fatal("the linked tmpfile has no name, or is still an orphan")
	}
	// Its close purges nothing now, and it links like any file.
	if err := s.purge(kept.Ino); err != nil || nlink(t, s, kept.Ino) != 1 {
		t.Fatalf("purge of the linked tmpfile: %v", err)
	}
	if _, _, err := s.link(&wire.LinkReq{Ino: kept.Ino, Parent: RootIno, Name: "again"}); err != nil || nlink(t, s, kept.Ino) != 2 {
		t.Fatalf("second link: %v", err)
	}

	dropped := tmp()
	commit(t, s, dropped.Ino, ext(0, 50, block.Sum([]byte("dropped")), 0, 50))
	if err := s.purge(dropped.Ino); err != nil {
		t.Fatal(err)
	}
	gone(t, s, dropped.Ino)
	if slices.Contains(owned(), dropped.Ino) {
		t.Fatal("the purged tmpfile is still an orphan")
	}
	checkRefs(t, s)

	// A purged tmpfile cannot be linked; nor a file that lost its names.
	if _, _, err := s.link(&wire.LinkReq{Ino: dropped.Ino, Parent: d.Ino, Name: "late"}); err == nil {
		t.Fatal("linked a purged tmpfile")
	}
	f := mk(t, s, d.Ino, "f", modeFile)
	if _, _, err := s.remove(&wire.RemoveReq{Parent: d.Ino, Name: "f", Open: []uint64{f.Ino}, Session: session}); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.link(&wire.LinkReq{Ino: f.Ino, Parent: d.Ino, Name: "back"})
	wantErr(t, "link a file unlinked while open", err, wire.ErrNotFound)

	_, err = s.tmpfile(&wire.TmpfileReq{Parent: kept.Ino, Mode: 0o600, Session: session})
	wantErr(t, "tmpfile in a file", err, wire.Errorf(wire.CodeNotDir, ""))
	removed := mk(t, s, RootIno, "removed", modeDir)
	if err := rmdir(s, RootIno, "removed"); err != nil {
		t.Fatal(err)
	}
	_, err = s.tmpfile(&wire.TmpfileReq{Parent: removed.Ino, Mode: 0o600, Session: session})
	wantErr(t, "tmpfile in a removed directory", err, wire.ErrNotFound)
}
