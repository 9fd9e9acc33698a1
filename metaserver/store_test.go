package metaserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/wire"
	badger "github.com/dgraph-io/badger/v4"
)

// Tests of the namespace store itself: no network, one Badger in a
// temporary directory per test.

const (
	modeFile = syscall.S_IFREG | 0o644
	modeDir  = syscall.S_IFDIR | 0o755
	modeLink = syscall.S_IFLNK | 0o777
)

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newStore(t testing.TB) *store {
	t.Helper()
	s, err := openStore(t.TempDir(), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.close() })
	return s
}

func mk(t *testing.T, s *store, parent uint64, name string, mode uint32) wire.Attr {
	t.Helper()
	a, _, err := s.make(&wire.MakeReq{Parent: parent, Name: name, Mode: mode, Uid: 1, Gid: 2, Target: "target"})
	if err != nil {
		t.Fatalf("make %d/%q: %v", parent, name, err)
	}
	return a
}

func attr(t *testing.T, s *store, ino uint64) wire.Attr {
	t.Helper()
	a, err := s.getAttr(ino)
	if err != nil {
		t.Fatalf("getAttr %d: %v", ino, err)
	}
	return a
}

func lookupIno(t *testing.T, s *store, parent uint64, name string) uint64 {
	t.Helper()
	a, err := s.lookup(parent, name)
	if err != nil {
		t.Fatalf("lookup %d/%q: %v", parent, name, err)
	}
	return a.Ino
}

func nlink(t *testing.T, s *store, ino uint64) uint32 { t.Helper(); return attr(t, s, ino).Nlink }

// rawInode reads the stored record, with the parent pointer.
func rawInode(t *testing.T, s *store, ino uint64) *inode {
	t.Helper()
	var n *inode
	if err := s.view(func(tx *txn) error {
		var err error
		n, err = tx.getInode(ino)
		return err
	}); err != nil {
		t.Fatalf("inode %d: %v", ino, err)
	}
	return n
}

func gone(t *testing.T, s *store, ino uint64) {
	t.Helper()
	if _, err := s.getAttr(ino); !errors.Is(err, wire.ErrNotFound) {
		t.Fatalf("inode %d still exists (err %v)", ino, err)
	}
}

func absent(t *testing.T, s *store, parent uint64, name string) {
	t.Helper()
	if _, err := s.lookup(parent, name); !errors.Is(err, wire.ErrNotFound) {
		t.Fatalf("%d/%q still exists (err %v)", parent, name, err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

func names(t *testing.T, s *store, dir uint64) []string {
	t.Helper()
	r, err := s.readDir(&wire.ReadDirReq{Ino: dir})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range r.Entries {
		out = append(out, e.Name)
	}
	return out
}

func rename(s *store, op uint64, oname string, np uint64, nname string, flags uint32) error {
	_, _, err := s.rename(&wire.RenameReq{OldParent: op, OldName: oname, NewParent: np, NewName: nname, Flags: flags})
	return err
}

func unlink(s *store, parent uint64, name string) error {
	_, _, err := s.remove(&wire.RemoveReq{Parent: parent, Name: name})
	return err
}

func rmdir(s *store, parent uint64, name string) error {
	_, _, err := s.remove(&wire.RemoveReq{Parent: parent, Name: name, Dir: true})
	return err
}

func TestRootOnFirstOpen(t *testing.T) {
	s := newStore(t)
	a := attr(t, s, RootIno)
	if a.Mode != modeDir || a.Nlink != 2 {
		t.Fatalf("root: %+v", a)
	}
	if n := rawInode(t, s, RootIno); n.Parent != RootIno {
		t.Fatalf("root's parent is %d", n.Parent)
	}
	if got := names(t, s, RootIno); len(got) != 0 {
		t.Fatalf("fresh root lists %v", got)
	}
}

func TestMakeLookup(t *testing.T) {
	s := newStore(t)
	f := mk(t, s, RootIno, "file", modeFile)
	d := mk(t, s, RootIno, "dir", modeDir)
	l := mk(t, s, RootIno, "link", modeLink)
	n := mk(t, s, RootIno, "noType", 0o600)

	if f.Mode != modeFile || f.Nlink != 1 || f.Size != 0 || f.Uid != 1 || f.Gid != 2 || f.Mtime == 0 {
		t.Errorf("file attr %+v", f)
	}
	if d.Mode != modeDir || d.Nlink != 2 {
		t.Errorf("dir attr %+v", d)
	}
	if l.Size != uint64(len("target")) {
		t.Errorf("symlink size %d", l.Size)
	}
	if n.Mode != syscall.S_IFREG|0o600 {
		t.Errorf("mode without a type became %o, want a regular file", n.Mode)
	}
	if tgt, err := s.readlink(l.Ino); err != nil || tgt != "target" {
		t.Errorf("readlink: %q %v", tgt, err)
	}
	if _, err := s.readlink(f.Ino); !errors.Is(err, wire.ErrInvalid) {
		t.Errorf("readlink of a file: %v", err)
	}
	inos := map[uint64]bool{RootIno: true}
	for _, a := range []wire.Attr{f, d, l, n} {
		if inos[a.Ino] {
			t.Fatalf("inode %d handed out twice", a.Ino)
		}
		inos[a.Ino] = true
	}
	for name, want := range map[string]wire.Attr{"file": f, "dir": d, "link": l} {
		got, err := s.lookup(RootIno, name)
		if err != nil || got != want {
			t.Errorf("lookup %q: %+v %v, want %+v", name, got, err, want)
		}
		if got := attr(t, s, want.Ino); got != want {
			t.Errorf("getAttr %q: %+v, want %+v", name, got, want)
		}
	}

	_, err := s.lookup(RootIno, "nope")
	wantErr(t, "lookup missing", err, wire.ErrNotFound)
	_, err = s.lookup(f.Ino, "x")
	wantErr(t, "lookup in a file", err, wire.ErrNotDir)
	_, err = s.lookup(RootIno, strings.Repeat("x", 256))
	wantErr(t, "lookup long name", err, wire.ErrNameTooLong)
	_, _, err = s.make(&wire.MakeReq{Parent: RootIno, Name: "file", Mode: modeDir})
	wantErr(t, "make existing", err, wire.ErrExists)
	_, _, err = s.make(&wire.MakeReq{Parent: f.Ino, Name: "x", Mode: modeFile})
	wantErr(t, "make in a file", err, wire.ErrNotDir)
	_, _, err = s.make(&wire.MakeReq{Parent: 999999, Name: "x", Mode: modeFile})
	wantErr(t, "make in a missing dir", err, wire.ErrNotFound)
	for _, bad := range []string{"", ".", "..", "a/b", "a\x00b"} {
		_, _, err = s.make(&wire.MakeReq{Parent: RootIno, Name: bad, Mode: modeFile})
		wantErr(t, fmt.Sprintf("make %q", bad), err, wire.ErrInvalid)
	}
	_, _, err = s.make(&wire.MakeReq{Parent: RootIno, Name: strings.Repeat("x", 256), Mode: modeFile})
	wantErr(t, "make 256-byte name", err, wire.ErrNameTooLong)
	mk(t, s, RootIno, strings.Repeat("x", 255), modeFile)
	_, _, err = s.make(&wire.MakeReq{Parent: RootIno, Name: "emptylink", Mode: modeLink})
	wantErr(t, "symlink without target", err, wire.ErrInvalid)
	if got := names(t, s, RootIno); len(got) != 5 {
		t.Fatalf("failed makes left entries: %v", got)
	}
}

func TestSetgidDirectory(t *testing.T) {
	s := newStore(t)
	d := mk(t, s, RootIno, "g", modeDir|syscall.S_ISGID)
	if _, err := s.setAttr(&wire.SetAttrReq{Ino: d.Ino, Valid: wire.SetGid, Gid: 77}); err != nil {
		t.Fatal(err)
	}
	f, _, _ := s.make(&wire.MakeReq{Parent: d.Ino, Name: "f", Mode: modeFile, Gid: 5})
	sub, _, _ := s.make(&wire.MakeReq{Parent: d.Ino, Name: "sub", Mode: modeDir, Gid: 5})
	if f.Gid != 77 || sub.Gid != 77 || sub.Mode&syscall.S_ISGID == 0 || f.Mode&syscall.S_ISGID != 0 {
		t.Fatalf("setgid inheritance: file %+v dir %+v", f, sub)
	}
}

func TestReadDirPaging(t *testing.T) {
	s := newStore(t)
	d := mk(t, s, RootIno, "d", modeDir)
	var want []string
	for i := 0; i < 25; i++ {
		// Created out of order; listed in byte order.
		name := fmt.Sprintf("n%02d", (i*7)%25)
		mode := uint32(modeFile)
		if i%5 == 0 {
			mode = modeDir
		}
		mk(t, s, d.Ino, name, mode)
		want = append(want, name)
	}
	mk(t, s, RootIno, "outside", modeFile) // must not leak into d's listing
	slices.Sort(want)
	if got := names(t, s, d.Ino); !slices.Equal(got, want) {
		t.Fatalf("full listing %v, want %v", got, want)
	}
	for _, limit := range []uint32{1, 3, 7, 24, 25, 26} {
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			if pages > 30 {
				t.Fatal("paging does not end")
			}
			r, err := s.readDir(&wire.ReadDirReq{Ino: d.Ino, After: after, Limit: limit})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Entries) > int(limit) {
				t.Fatalf("limit %d: page of %d", limit, len(r.Entries))
			}
			for _, e := range r.Entries {
				got = append(got, e.Name)
				if e.Attr != attr(t, s, e.Attr.Ino) {
					t.Fatalf("entry %q carries stale attributes", e.Name)
				}
				if e.Name != "" && lookupIno(t, s, d.Ino, e.Name) != e.Attr.Ino {
					t.Fatalf("entry %q has the wrong inode", e.Name)
				}
			}
			if !r.More {
				break
			}
			if len(r.Entries) == 0 {
				t.Fatal("More with an empty page")
			}
			after = r.Entries[len(r.Entries)-1].Name
		}
		if !slices.Equal(got, want) {
			t.Fatalf("limit %d: paged listing %v, want %v", limit, got, want)
		}
	}
	// After a name that does not exist starts at the next one.
	r, _ := s.readDir(&wire.ReadDirReq{Ino: d.Ino, After: "n10x", Limit: 2})
	if len(r.Entries) != 2 || r.Entries[0].Name != "n11" || r.Entries[1].Name != "n12" || !r.More {
		t.Fatalf("after a missing name: %+v", r)
	}
	// After the last name: nothing, no more.
	r, _ = s.readDir(&wire.ReadDirReq{Ino: d.Ino, After: "n24"})
	if len(r.Entries) != 0 || r.More {
		t.Fatalf("after the last name: %+v", r)
	}
	// Limit exactly the remainder: More is false.
	r, _ = s.readDir(&wire.ReadDirReq{Ino: d.Ino, After: "n21", Limit: 3})
	if len(r.Entries) != 3 || r.More {
		t.Fatalf("exact remainder: %d entries more=%v", len(r.Entries), r.More)
	}
	f := lookupIno(t, s, d.Ino, "n01")
	_, err := s.readDir(&wire.ReadDirReq{Ino: f})
	wantErr(t, "readDir of a file", err, wire.ErrNotDir)
	_, err = s.readDir(&wire.ReadDirReq{Ino: 999999})
	wantErr(t, "readDir of a missing dir", err, wire.ErrNotFound)
}

func TestLinkCounts(t *testing.T) {
	s := newStore(t)
	a := mk(t, s, RootIno, "a", modeDir)
	if nlink(t, s, RootIno) != 3 {
		t.Fatalf("root nlink %d after mkdir, want 3", nlink(t, s, RootIno))
	}
	b := mk(t, s, a.Ino, "b", modeDir)
	mk(t, s, a.Ino, "c", modeDir)
	f := mk(t, s, a.Ino, "f", modeFile)
	mk(t, s, a.Ino, "l", modeLink)
	if got := nlink(t, s, a.Ino); got != 4 {
		t.Fatalf("a: nlink %d with two subdirectories, want 4", got)
	}
	if got := nlink(t, s, b.Ino); got != 2 {
		t.Fatalf("empty dir nlink %d", got)
	}

	// Hard links.
	la, _, err := s.link(&wire.LinkReq{Ino: f.Ino, Parent: RootIno, Name: "f2"})
	if err != nil || la.Nlink != 2 || la.Ino != f.Ino {
		t.Fatalf("link: %+v %v", la, err)
	}
	if _, _, err := s.link(&wire.LinkReq{Ino: f.Ino, Parent: b.Ino, Name: "f3"}); err != nil {
		t.Fatal(err)
	}
	if nlink(t, s, f.Ino) != 3 || lookupIno(t, s, RootIno, "f2") != f.Ino || lookupIno(t, s, b.Ino, "f3") != f.Ino {
		t.Fatal("hard links do not name the same inode with nlink 3")
	}
	if nlink(t, s, RootIno) != 3 || nlink(t, s, b.Ino) != 2 {
		t.Fatal("a hard link to a file changed a directory's nlink")
	}
	_, _, err = s.link(&wire.LinkReq{Ino: a.Ino, Parent: RootIno, Name: "dirlink"})
	wantErr(t, "link to a directory", err, wire.ErrPerm)
	_, _, err = s.link(&wire.LinkReq{Ino: f.Ino, Parent: RootIno, Name: "a"})
	wantErr(t, "link onto an existing name", err, wire.ErrExists)
	_, _, err = s.link(&wire.LinkReq{Ino: f.Ino, Parent: f.Ino, Name: "x"})
	wantErr(t, "link into a file", err, wire.ErrNotDir)
	_, _, err = s.link(&wire.LinkReq{Ino: 999999, Parent: RootIno, Name: "x"})
	wantErr(t, "link to a missing inode", err, wire.ErrNotFound)

	got, _, err := s.remove(&wire.RemoveReq{Parent: RootIno, Name: "f2"})
	if err != nil || got.Ino != f.Ino || got.Nlink != 2 {
		t.Fatalf("unlink one of three names: %+v %v", got, err)
	}
	if nlink(t, s, f.Ino) != 2 {
		t.Fatalf("nlink %d after unlinking one of three names", nlink(t, s, f.Ino))
	}
	if err := unlink(s, b.Ino, "f3"); err != nil {
		t.Fatal(err)
	}
	if err := rmdir(s, a.Ino, "b"); err != nil {
		t.Fatal(err)
	}
	if got := nlink(t, s, a.Ino); got != 3 {
		t.Fatalf("a: nlink %d after rmdir of one of two subdirectories, want 3", got)
	}
	gone(t, s, b.Ino)
	got, _, err = s.remove(&wire.RemoveReq{Parent: a.Ino, Name: "f"})
	if err != nil || got.Ino != f.Ino || got.Nlink != 0 {
		t.Fatalf("unlink the last name: %+v %v", got, err)
	}
	gone(t, s, f.Ino)
	// Removing a directory reports no inode.
	if got, _, err := s.remove(&wire.RemoveReq{Parent: a.Ino, Name: "c", Dir: true}); err != nil || got.Ino != 0 {
		t.Fatalf("rmdir returned %+v %v", got, err)
	}
	if nlink(t, s, a.Ino) != 2 {
		t.Fatal("a's nlink not back to 2")
	}
}

func TestRemoveErrors(t *testing.T) {
	s := newStore(t)
	d := mk(t, s, RootIno, "d", modeDir)
	mk(t, s, d.Ino, "inner", modeFile)
	f := mk(t, s, RootIno, "f", modeFile)
	before := names(t, s, RootIno)

	wantErr(t, "rmdir non-empty", rmdir(s, RootIno, "d"), wire.ErrNotEmpty)
	wantErr(t, "unlink a directory", unlink(s, RootIno, "d"), wire.ErrIsDir)
	wantErr(t, "rmdir a file", rmdir(s, RootIno, "f"), wire.ErrNotDir)
	wantErr(t, "unlink missing", unlink(s, RootIno, "missing"), wire.ErrNotFound)
	wantErr(t, "unlink in a file", unlink(s, f.Ino, "x"), wire.ErrNotDir)
	wantErr(t, "rmdir dot", rmdir(s, d.Ino, "."), wire.ErrInvalid)
	wantErr(t, "rmdir dotdot", rmdir(s, d.Ino, ".."), wire.ErrNotEmpty)

	if got := names(t, s, RootIno); !slices.Equal(got, before) {
		t.Fatalf("failed removes changed the root: %v", got)
	}
	if nlink(t, s, RootIno) != 3 || nlink(t, s, d.Ino) != 2 || nlink(t, s, f.Ino) != 1 {
		t.Fatal("failed removes changed link counts")
	}
	if err := unlink(s, d.Ino, "inner"); err != nil {
		t.Fatal(err)
	}
	if err := rmdir(s, RootIno, "d"); err != nil {
		t.Fatal(err)
	}
	gone(t, s, d.Ino)
	_, err := s.readDir(&wire.ReadDirReq{Ino: d.Ino})
	wantErr(t, "readDir of a removed dir", err, wire.ErrNotFound)
	_, _, err = s.make(&wire.MakeReq{Parent: d.Ino, Name: "x", Mode: modeFile})
	wantErr(t, "make in a removed dir", err, wire.ErrNotFound)
	if nlink(t, s, RootIno) != 2 {
		t.Fatal("root nlink not back to 2")
	}
}

// tree is a small namespace for the rename tests:
//
//	/d1/{f1, e1/, full/{x}}
//	/d2/{f2, e2/}
type tree struct {
	d1, d2, f1, f2, e1, e2, full, x wire.Attr
}

func mkTree(t *testing.T, s *store) tree {
	var tr tree
	tr.d1 = mk(t, s, RootIno, "d1", modeDir)
	tr.d2 = mk(t, s, RootIno, "d2", modeDir)
	tr.f1 = mk(t, s, tr.d1.Ino, "f1", modeFile)
	tr.e1 = mk(t, s, tr.d1.Ino, "e1", modeDir)
	tr.full = mk(t, s, tr.d1.Ino, "full", modeDir)
	tr.x = mk(t, s, tr.full.Ino, "x", modeFile)
	tr.f2 = mk(t, s, tr.d2.Ino, "f2", modeFile)
	tr.e2 = mk(t, s, tr.d2.Ino, "e2", modeDir)
	return tr
}

func TestRenameSimple(t *testing.T) {
	s := newStore(t)
	tr := mkTree(t, s)
	// Within a directory.
	if err := rename(s, tr.d1.Ino, "f1", tr.d1.Ino, "g1", 0); err != nil {
		t.Fatal(err)
	}
	absent(t, s, tr.d1.Ino, "f1")
	if lookupIno(t, s, tr.d1.Ino, "g1") != tr.f1.Ino || nlink(t, s, tr.f1.Ino) != 1 {
		t.Fatal("renamed file lost")
	}
	// A directory across directories: parent pointers and nlinks move.
	if err := rename(s, tr.d1.Ino, "e1", tr.d2.Ino, "e1moved", 0); err != nil {
		t.Fatal(err)
	}
	if rawInode(t, s, tr.e1.Ino).Parent != tr.d2.Ino {
		t.Fatal("moved directory's parent not updated")
	}
	if nlink(t, s, tr.d1.Ino) != 3 || nlink(t, s, tr.d2.Ino) != 4 {
		t.Fatalf("nlinks after moving a dir: d1 %d (want 3) d2 %d (want 4)", nlink(t, s, tr.d1.Ino), nlink(t, s, tr.d2.Ino))
	}
	// A directory within its directory: nlinks unchanged.
	if err := rename(s, tr.d2.Ino, "e1moved", tr.d2.Ino, "e1again", 0); err != nil {
		t.Fatal(err)
	}
	if nlink(t, s, tr.d2.Ino) != 4 || rawInode(t, s, tr.e1.Ino).Parent != tr.d2.Ino {
		t.Fatal("rename within a directory changed nlink or parent")
	}
	// Onto itself: nothing happens.
	if err := rename(s, tr.d2.Ino, "f2", tr.d2.Ino, "f2", 0); err != nil {
		t.Fatal(err)
	}
	if lookupIno(t, s, tr.d2.Ino, "f2") != tr.f2.Ino || nlink(t, s, tr.f2.Ino) != 1 {
		t.Fatal("rename onto itself changed something")
	}
	wantErr(t, "rename missing", rename(s, tr.d1.Ino, "nope", tr.d2.Ino, "x", 0), wire.ErrNotFound)
	wantErr(t, "rename into a file", rename(s, tr.d2.Ino, "f2", tr.f2.Ino, "x", 0), wire.ErrNotDir)
	wantErr(t, "rename to a bad name", rename(s, tr.d2.Ino, "f2", tr.d2.Ino, "a/b", 0), wire.ErrInvalid)
	wantErr(t, "rename with unknown flags", rename(s, tr.d2.Ino, "f2", tr.d2.Ino, "z", 4), wire.ErrInvalid)
	wantErr(t, "rename with both flags", rename(s, tr.d2.Ino, "f2", tr.d2.Ino, "z", wire.RenameExchange|wire.RenameNoReplace), wire.ErrInvalid)
}

func TestRenameOverFile(t *testing.T) {
	s := newStore(t)
	tr := mkTree(t, s)
	replaced, _, err := s.rename(&wire.RenameReq{OldParent: tr.d1.Ino, OldName: "f1", NewParent: tr.d2.Ino, NewName: "f2"})
	if err != nil {
		t.Fatal(err)
	}
	if replaced.Ino != tr.f2.Ino || replaced.Nlink != 0 {
		t.Fatalf("replaced = %+v, want f2 with nlink 0", replaced)
	}
	absent(t, s, tr.d1.Ino, "f1")
	if lookupIno(t, s, tr.d2.Ino, "f2") != tr.f1.Ino {
		t.Fatal("target name does not hold the source")
	}
	gone(t, s, tr.f2.Ino)
	if nlink(t, s, tr.f1.Ino) != 1 {
		t.Fatal("source nlink changed")
	}

	// Over a file with another link: it survives with one link fewer.
	g := mk(t, s, RootIno, "g", modeFile)
	s.link(&wire.LinkReq{Ino: g.Ino, Parent: RootIno, Name: "g2"})
	h := mk(t, s, RootIno, "h", modeFile)
	replaced, _, err = s.rename(&wire.RenameReq{OldParent: RootIno, OldName: "h", NewParent: RootIno, NewName: "g"})
	if err != nil || replaced.Ino != g.Ino || replaced.Nlink != 1 {
		t.Fatalf("replace a linked file: %+v %v", replaced, err)
	}
	if nlink(t, s, g.Ino) != 1 || lookupIno(t, s, RootIno, "g2") != g.Ino || lookupIno(t, s, RootIno, "g") != h.Ino {
		t.Fatal("replacing one of two links broke the other")
	}
}

func TestRenameOverDirs(t *testing.T) {
	s := newStore(t)
	tr := mkTree(t, s)
	// Over an empty dir, across directories: d1 loses a subdir, d2 loses
	// e2 and gains e1.
	if err := rename(s, tr.d1.Ino, "e1", tr.d2.Ino, "e2", 0); err != nil {
		t.Fatal(err)
	}
	gone(t, s, tr.e2.Ino)
	if lookupIno(t, s, tr.d2.Ino, "e2") != tr.e1.Ino || rawInode(t, s, tr.e1.Ino).Parent != tr.d2.Ino {
		t.Fatal("dir over empty dir: wrong result")
	}
	if nlink(t, s, tr.d1.Ino) != 3 || nlink(t, s, tr.d2.Ino) != 3 {
		t.Fatalf("nlinks: d1 %d (want 3), d2 %d (want 3)", nlink(t, s, tr.d1.Ino), nlink(t, s, tr.d2.Ino))
	}
	// Over an empty dir in the same directory.
	mk(t, s, tr.d2.Ino, "e3", modeDir)
	if err := rename(s, tr.d2.Ino, "e2", tr.d2.Ino, "e3", 0); err != nil {
		t.Fatal(err)
	}
	if nlink(t, s, tr.d2.Ino) != 3 {
		t.Fatalf("d2 nlink %d after dir over sibling dir, want 3", nlink(t, s, tr.d2.Ino))
	}

	snapshot := func() string {
		return fmt.Sprint(names(t, s, tr.d1.Ino), names(t, s, tr.d2.Ino), names(t, s, tr.full.Ino),
			nlink(t, s, tr.d1.Ino), nlink(t, s, tr.d2.Ino), nlink(t, s, tr.full.Ino))
	}
	before := snapshot()
	wantErr(t, "dir over non-empty dir", rename(s, tr.d2.Ino, "e3", tr.d1.Ino, "full", 0), wire.ErrNotEmpty)
	wantErr(t, "file over dir", rename(s, tr.d1.Ino, "f1", tr.d2.Ino, "e3", 0), wire.ErrIsDir)
	wantErr(t, "dir over file", rename(s, tr.d2.Ino, "e3", tr.d1.Ino, "f1", 0), wire.ErrNotDir)
	wantErr(t, "dir into its child", rename(s, tr.d1.Ino, "full", tr.full.Ino, "again", 0), wire.ErrInvalid)
	wantErr(t, "dir into itself", rename(s, RootIno, "d1", tr.d1.Ino, "d1", 0), wire.ErrInvalid)
	deep := mk(t, s, tr.full.Ino, "deep", modeDir)
	before = snapshot()
	wantErr(t, "dir into its grandchild", rename(s, RootIno, "d1", deep.Ino, "d1", 0), wire.ErrInvalid)
	if after := snapshot(); after != before {
		t.Fatalf("failed renames changed the tree:\n%s\n%s", before, after)
	}
	if rawInode(t, s, tr.d1.Ino).Parent != RootIno {
		t.Fatal("failed rename moved d1")
	}
}

func TestRenameNoReplace(t *testing.T) {
	s := newStore(t)
	tr := mkTree(t, s)
	wantErr(t, "noreplace over a file", rename(s, tr.d1.Ino, "f1", tr.d2.Ino, "f2", wire.RenameNoReplace), wire.ErrExists)
	wantErr(t, "noreplace over a dir", rename(s, tr.d1.Ino, "e1", tr.d2.Ino, "e2", wire.RenameNoReplace), wire.ErrExists)
	if lookupIno(t, s, tr.d2.Ino, "f2") != tr.f2.Ino || lookupIno(t, s, tr.d1.Ino, "f1") != tr.f1.Ino {
		t.Fatal("refused rename changed names")
	}
	if err := rename(s, tr.d1.Ino, "f1", tr.d2.Ino, "new", wire.RenameNoReplace); err != nil {
		t.Fatalf("noreplace to a free name: %v", err)
	}
	if lookupIno(t, s, tr.d2.Ino, "new") != tr.f1.Ino {
		t.Fatal("noreplace rename did not happen")
	}
}

func TestRenameExchange(t *testing.T) {
	s := newStore(t)
	tr := mkTree(t, s)
	// A file in d1 with a directory in d2.
	if err := rename(s, tr.d1.Ino, "f1", tr.d2.Ino, "e2", wire.RenameExchange); err != nil {
		t.Fatal(err)
	}
	if lookupIno(t, s, tr.d1.Ino, "f1") != tr.e2.Ino || lookupIno(t, s, tr.d2.Ino, "e2") != tr.f1.Ino {
		t.Fatal("names not exchanged")
	}
	if p := rawInode(t, s, tr.e2.Ino).Parent; p != tr.d1.Ino {
		t.Fatalf("exchanged dir's parent %d, want d1 %d", p, tr.d1.Ino)
	}
	// d1 had e1, full; now also e2: 2+3. d2 had e2; now none: 2.
	if nlink(t, s, tr.d1.Ino) != 5 || nlink(t, s, tr.d2.Ino) != 2 {
		t.Fatalf("nlinks after exchange: d1 %d (want 5) d2 %d (want 2)", nlink(t, s, tr.d1.Ino), nlink(t, s, tr.d2.Ino))
	}
	if nlink(t, s, tr.f1.Ino) != 1 || nlink(t, s, tr.e2.Ino) != 2 {
		t.Fatal("exchanged inodes' nlinks changed")
	}
	// The dentries' modes follow the inodes (for d_type).
	r, _ := s.readDir(&wire.ReadDirReq{Ino: tr.d1.Ino})
	for _, e := range r.Entries {
		if e.Name == "f1" && e.Attr.Mode != modeDir {
			t.Fatal("readDir shows the exchanged dir with the wrong mode")
		}
	}
	// Two directories across parents: nlinks unchanged, parents swapped.
	if err := rename(s, tr.d1.Ino, "e1", RootIno, "d2", wire.RenameExchange); err != nil {
		t.Fatal(err)
	}
	if rawInode(t, s, tr.e1.Ino).Parent != RootIno || rawInode(t, s, tr.d2.Ino).Parent != tr.d1.Ino {
		t.Fatal("parents not swapped")
	}
	if nlink(t, s, tr.d1.Ino) != 5 || nlink(t, s, RootIno) != 4 {
		t.Fatalf("nlinks after dir-dir exchange: d1 %d root %d", nlink(t, s, tr.d1.Ino), nlink(t, s, RootIno))
	}
	// Within one directory.
	if err := rename(s, tr.d1.Ino, "full", tr.d1.Ino, "f1", wire.RenameExchange); err != nil {
		t.Fatal(err)
	}
	if lookupIno(t, s, tr.d1.Ino, "full") != tr.e2.Ino || lookupIno(t, s, tr.d1.Ino, "f1") != tr.full.Ino || nlink(t, s, tr.d1.Ino) != 5 {
		t.Fatal("exchange within a directory")
	}
	wantErr(t, "exchange with a missing name", rename(s, tr.d1.Ino, "f1", tr.d1.Ino, "missing", wire.RenameExchange), wire.ErrNotFound)
	// /d1/e1 is now the old /d2.
	wantErr(t, "exchange a dir with its child", rename(s, RootIno, "d1", tr.d1.Ino, "e1", wire.RenameExchange), wire.ErrInvalid)
	wantErr(t, "exchange a child with its ancestor", rename(s, tr.d1.Ino, "e1", RootIno, "d1", wire.RenameExchange), wire.ErrInvalid)
	// Exchanging two links of one inode does nothing.
	h := mk(t, s, RootIno, "h", modeFile)
	s.link(&wire.LinkReq{Ino: h.Ino, Parent: tr.d1.Ino, Name: "h2"})
	if err := rename(s, RootIno, "h", tr.d1.Ino, "h2", wire.RenameExchange); err != nil {
		t.Fatal(err)
	}
	if lookupIno(t, s, RootIno, "h") != h.Ino || lookupIno(t, s, tr.d1.Ino, "h2") != h.Ino || nlink(t, s, h.Ino) != 2 {
		t.Fatal("exchange of two links of one inode changed something")
	}
}

// TestRenameHardLinkOntoSibling: rename(a, b) where a and b are links to
// one inode does nothing: both names stay (POSIX).
func TestRenameHardLinkOntoSibling(t *testing.T) {
	s := newStore(t)
	f := mk(t, s, RootIno, "a", modeFile)
	d := mk(t, s, RootIno, "d", modeDir)
	s.link(&wire.LinkReq{Ino: f.Ino, Parent: RootIno, Name: "b"})
	s.link(&wire.LinkReq{Ino: f.Ino, Parent: d.Ino, Name: "c"})
	for _, c := range []struct {
		op      uint64
		oname   string
		np      uint64
		nname   string
		flags   uint32
		wantErr error
	}{
		{RootIno, "a", RootIno, "b", 0, nil},
		{RootIno, "b", d.Ino, "c", 0, nil},
		{RootIno, "a", RootIno, "b", wire.RenameNoReplace, wire.ErrExists},
	} {
		err := rename(s, c.op, c.oname, c.np, c.nname, c.flags)
		if c.wantErr == nil && err != nil || c.wantErr != nil && !errors.Is(err, c.wantErr) {
			t.Fatalf("rename %q→%q flags %d: %v, want %v", c.oname, c.nname, c.flags, err, c.wantErr)
		}
		if lookupIno(t, s, RootIno, "a") != f.Ino || lookupIno(t, s, RootIno, "b") != f.Ino || lookupIno(t, s, d.Ino, "c") != f.Ino {
			t.Fatal("a name went away")
		}
		if nlink(t, s, f.Ino) != 3 {
			t.Fatalf("nlink %d, want 3", nlink(t, s, f.Ino))
		}
	}
}

// TestOrphans: a file the caller has open survives its last unlink (or
// being replaced by a rename) with nlink 0 and its layout, until purge.
func TestOrphans(t *testing.T) {
	s := newStore(t)
	f := mk(t, s, RootIno, "f", modeFile)
	id := block.Sum([]byte("orphan data"))
	commit(t, s, f.Ino, ext(0, 100, id, 0, 100))
	gone1, _, err := s.remove(&wire.RemoveReq{Parent: RootIno, Name: "f", Open: []uint64{99, f.Ino}})
	if err != nil || gone1.Nlink != 0 {
		t.Fatalf("remove: %+v %v", gone1, err)
	}
	absent(t, s, RootIno, "f")
	if a := attr(t, s, f.Ino); a.Nlink != 0 || a.Size != 100 {
		t.Fatalf("orphan attr %+v", a)
	}
	if l, err := s.layout(f.Ino); err != nil || len(l.Extents) != 1 {
		t.Fatalf("orphan layout %+v %v", l, err)
	}
	if refCount(t, s, id) != 1 {
		t.Fatal("orphan's block lost its reference")
	}
	// A write to the orphan still commits.
	commit(t, s, f.Ino, ext(100, 10, id, 0, 100))
	// No new name for an unlinked inode.
	_, _, err = s.link(&wire.LinkReq{Ino: f.Ino, Parent: RootIno, Name: "back"})
	wantErr(t, "link an orphan", err, wire.ErrNotFound)
	checkRefs(t, s)
	if err := s.purge(f.Ino); err != nil {
		t.Fatal(err)
	}
	gone(t, s, f.Ino)
	if refCount(t, s, id) != 0 || !hasGarbage(t, s, id) {
		t.Fatal("purge left the block referenced")
	}
	if err := s.purge(f.Ino); err != nil {
		t.Fatalf("second purge: %v", err)
	}
	// purge of a linked file or a directory does nothing.
	g := mk(t, s, RootIno, "g", modeFile)
	if err := s.purge(g.Ino); err != nil || nlink(t, s, g.Ino) != 1 {
		t.Fatalf("purge of a linked file: %v", err)
	}
	if err := s.purge(RootIno); err != nil || nlink(t, s, RootIno) != 2 {
		t.Fatalf("purge of the root: %v", err)
	}
	// Replaced by a rename while open.
	h := mk(t, s, RootIno, "h", modeFile)
	replaced, _, err := s.rename(&wire.RenameReq{OldParent: RootIno, OldName: "g", NewParent: RootIno, NewName: "h", Open: []uint64{h.Ino}})
	if err != nil || replaced.Ino != h.Ino || replaced.Nlink != 0 {
		t.Fatalf("rename over an open file: %+v %v", replaced, err)
	}
	if a := attr(t, s, h.Ino); a.Nlink != 0 {
		t.Fatal("replaced open file was not kept")
	}
	countOrphans := func() int {
		n := 0
		s.view(func(tx *txn) error {
			it := tx.NewIterator(badger.IteratorOptions{Prefix: []byte{tOrphan}})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				n++
			}
			return nil
		})
		return n
	}
	if countOrphans() != 1 {
		t.Fatalf("%d orphan keys, want 1", countOrphans())
	}
	s.purge(h.Ino)
	if countOrphans() != 0 {
		t.Fatal("purge left an orphan key")
	}
	checkRefs(t, s)
}

func TestSetAttr(t *testing.T) {
	s := newStore(t)
	f := mk(t, s, RootIno, "f", modeFile)
	d := mk(t, s, RootIno, "d", modeDir)
	a, err := s.setAttr(&wire.SetAttrReq{Ino: f.Ino, Valid: wire.SetMode | wire.SetUid | wire.SetAtime | wire.SetMtime,
		Mode: syscall.S_IFDIR | 0o4711, Uid: 9, Atime: 11, Mtime: 12})
	if err != nil {
		t.Fatal(err)
	}
	if a.Mode != syscall.S_IFREG|0o4711 || a.Uid != 9 || a.Gid != 2 || a.Atime != 11 || a.Mtime != 12 {
		t.Fatalf("setattr: %+v (the type must not change)", a)
	}
	if attr(t, s, f.Ino) != a {
		t.Fatal("setattr result not stored")
	}
	_, err = s.setAttr(&wire.SetAttrReq{Ino: d.Ino, Valid: wire.SetSize, Size: 0})
	wantErr(t, "truncate a dir", err, wire.ErrIsDir)
	l := mk(t, s, RootIno, "l", modeLink)
	_, err = s.setAttr(&wire.SetAttrReq{Ino: l.Ino, Valid: wire.SetSize, Size: 0})
	wantErr(t, "truncate a symlink", err, wire.ErrInvalid)
	_, err = s.setAttr(&wire.SetAttrReq{Ino: 999999, Valid: wire.SetUid})
	wantErr(t, "setattr missing", err, wire.ErrNotFound)
	// Truncate up makes a hole.
	a, err = s.setAttr(&wire.SetAttrReq{Ino: f.Ino, Valid: wire.SetSize, Size: 1 << 30})
	if err != nil || a.Size != 1<<30 {
		t.Fatalf("truncate up: %+v %v", a, err)
	}
	if l, _ := s.layout(f.Ino); len(l.Extents) != 0 || l.Size != 1<<30 {
		t.Fatalf("truncate up layout %+v", l)
	}
}

// ---- layouts and reference counts ----

func ext(off uint64, n uint32, id block.ID, boff, blen uint32) wire.Extent {
	return wire.Extent{Off: off, Len: n, Block: id, BlockOff: boff, BlockLen: blen}
}

func commit(t *testing.T, s *store, ino uint64, es ...wire.Extent) wire.Attr {
	t.Helper()
	a, err := s.commit(&wire.CommitReq{Ino: ino, Extents: es, Mtime: 1234})
	if err != nil {
		t.Fatalf("commit %d %+v: %v", ino, es, err)
	}
	return a
}

func truncate(t *testing.T, s *store, ino, size uint64) {
	t.Helper()
	if _, err := s.setAttr(&wire.SetAttrReq{Ino: ino, Valid: wire.SetSize, Size: size}); err != nil {
		t.Fatalf("truncate %d to %d: %v", ino, size, err)
	}
}

func wantLayout(t *testing.T, s *store, ino, size uint64, want ...wire.Extent) {
	t.Helper()
	l, err := s.layout(ino)
	if err != nil {
		t.Fatal(err)
	}
	if l.Size != size || !slices.Equal(l.Extents, want) {
		t.Fatalf("layout of %d:\n got size %d %+v\nwant size %d %+v", ino, l.Size, l.Extents, size, want)
	}
}

func refCount(t *testing.T, s *store, id block.ID) uint64 {
	t.Helper()
	var r ref
	err := s.view(func(tx *txn) error { return tx.get(refKey(id), &r) })
	if errors.Is(err, wire.ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	if r.Count == 0 {
		t.Fatalf("block %s has an R key with count 0", id.Short())
	}
	return r.Count
}

// garbage returns the blocks that have a G key.
func garbage(t *testing.T, s *store) map[block.ID]bool {
	t.Helper()
	g := map[block.ID]bool{}
	s.view(func(tx *txn) error {
		it := tx.NewIterator(badger.IteratorOptions{Prefix: []byte{tGarbage}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) != 1+8+32 {
				t.Fatalf("G key of %d bytes", len(k))
			}
			g[block.ID(k[9:])] = true
		}
		return nil
	})
	return g
}

func hasGarbage(t *testing.T, s *store, id block.ID) bool { t.Helper(); return garbage(t, s)[id] }

// checkRefs scans every E and R key: each block's count equals the number
// of extents naming it, across all files; no R key is zero; the recorded
// block length matches the extents'; extents of a file do not overlap,
// lie inside their block and belong to a live regular file; blocks
// without a count that some extent ever named have a G key (the caller
// passes them in seen).
func checkRefs(t *testing.T, s *store, seen ...block.ID) {
	t.Helper()
	type refInfo struct {
		count uint64
		blen  uint32
	}
	fromE := map[block.ID]*refInfo{}
	fromR := map[block.ID]ref{}
	err := s.view(func(tx *txn) error {
		it := tx.NewIterator(badger.IteratorOptions{Prefix: []byte{tExtent}, PrefetchValues: true})
		defer it.Close()
		var lastIno, lastEnd uint64
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) != 17 {
				t.Fatalf("E key of %d bytes", len(k))
			}
			ino, off := binary.BigEndian.Uint64(k[1:9]), binary.BigEndian.Uint64(k[9:17])
			var rec extentRecord
			if err := it.Item().Value(func(b []byte) error { return wire.Unmarshal(b, &rec) }); err != nil {
				return err
			}
			e := wire.Extent{Off: off, Len: rec.Len, Block: rec.Block, BlockOff: rec.BlockOff, BlockLen: rec.BlockLen}
			if !e.Valid() {
				t.Fatalf("invalid extent in ino %d: %+v", ino, e)
			}
			if ino == lastIno && off < lastEnd {
				t.Fatalf("ino %d: extent at %d overlaps the previous one ending at %d", ino, off, lastEnd)
			}
			lastIno, lastEnd = ino, e.End()
			n, err := tx.getInode(ino)
			if err != nil {
				t.Fatalf("extent of missing inode %d: %v", ino, err)
			}
			if !n.isReg() || e.End() > n.Size {
				t.Fatalf("ino %d (mode %o, size %d) has extent %+v", ino, n.Mode, n.Size, e)
			}
			ri := fromE[e.Block]
			if ri == nil {
				ri = &refInfo{blen: e.BlockLen}
				fromE[e.Block] = ri
			}
			ri.count++
			if ri.blen != e.BlockLen {
				t.Fatalf("block %s named with lengths %d and %d", e.Block.Short(), ri.blen, e.BlockLen)
			}
		}
		it2 := tx.NewIterator(badger.IteratorOptions{Prefix: []byte{tRef}, PrefetchValues: true})
		defer it2.Close()
		for it2.Rewind(); it2.Valid(); it2.Next() {
			var r ref
			if err := it2.Item().Value(func(b []byte) error { return wire.Unmarshal(b, &r) }); err != nil {
				return err
			}
			fromR[block.ID(it2.Item().Key()[1:])] = r
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, ri := range fromE {
		r, ok := fromR[id]
		if !ok || r.Count != ri.count {
			t.Fatalf("block %s: named by %d extents, R count %d (present %v)", id.Short(), ri.count, r.Count, ok)
		}
		if r.Len != ri.blen {
			t.Fatalf("block %s: R length %d, extents say %d", id.Short(), r.Len, ri.blen)
		}
	}
	for id, r := range fromR {
		if fromE[id] == nil {
			t.Fatalf("block %s: R count %d but no extent names it", id.Short(), r.Count)
		}
	}
	g := garbage(t, s)
	for _, id := range seen {
		if fromE[id] == nil && !g[id] {
			t.Fatalf("block %s lost its last reference but has no G key", id.Short())
		}
	}
}

func TestCommitLayout(t *testing.T) {
	s := newStore(t)
	f := mk(t, s, RootIno, "f", modeFile)
	A, B := block.Sum([]byte("A")), block.Sum([]byte("B"))
	a := commit(t, s, f.Ino, ext(0, 100, A, 0, 100), ext(100, 50, B, 10, 60))
	if a.Size != 150 || a.Mtime != 1234 {
		t.Fatalf("attr after commit %+v", a)
	}
	wantLayout(t, s, f.Ino, 150, ext(0, 100, A, 0, 100), ext(100, 50, B, 10, 60))
	if attr(t, s, f.Ino) != a {
		t.Fatal("commit's attr not stored")
	}
	// A commit beyond the end leaves a hole; size covers it.
	commit(t, s, f.Ino, ext(1<<20, 10, B, 0, 60))
	wantLayout(t, s, f.Ino, 1<<20+10, ext(0, 100, A, 0, 100), ext(100, 50, B, 10, 60), ext(1<<20, 10, B, 0, 60))
	// A commit inside never shrinks the file.
	commit(t, s, f.Ino, ext(0, 10, A, 0, 100))
	if attr(t, s, f.Ino).Size != 1<<20+10 {
		t.Fatal("commit inside the file changed its size")
	}
	checkRefs(t, s, A, B)
	if refCount(t, s, A) != 2 || refCount(t, s, B) != 2 {
		t.Fatalf("counts A %d B %d", refCount(t, s, A), refCount(t, s, B))
	}

	d := mk(t, s, RootIno, "d", modeDir)
	_, err := s.commit(&wire.CommitReq{Ino: d.Ino, Extents: []wire.Extent{ext(0, 1, A, 0, 100)}})
	wantErr(t, "commit to a dir", err, wire.ErrInvalid)
	for _, bad := range []wire.Extent{
		ext(0, 0, A, 0, 100),                 // empty
		ext(0, 10, A, 95, 100),               // past the block's end
		ext(0, 10, A, 0, block.MaxSize+1),    // block too big
		ext(^uint64(0)-5, 10, A, 0, 100),     // wraps
		ext(0, 0xffffffff, A, 0, 0xffffffff), // longer than any block
	} {
		_, err := s.commit(&wire.CommitReq{Ino: f.Ino, Extents: []wire.Extent{ext(0, 1, A, 0, 100), bad}})
		wantErr(t, fmt.Sprintf("commit %+v", bad), err, wire.ErrInvalid)
	}
	_, err = s.commit(&wire.CommitReq{Ino: 999999, Extents: []wire.Extent{ext(0, 1, A, 0, 100)}})
	wantErr(t, "commit to a missing inode", err, wire.ErrNotFound)
	checkRefs(t, s, A, B)
	if refCount(t, s, A) != 2 {
		t.Fatal("a refused commit changed a count")
	}
}

func TestOverwriteSplitsExtent(t *testing.T) {
	s := newStore(t)
	f := mk(t, s, RootIno, "f", modeFile)
	A, B, C := block.Sum([]byte("A")), block.Sum([]byte("B")), block.Sum([]byte("C"))
	commit(t, s, f.Ino, ext(1000, 100, A, 0, 100))
	if refCount(t, s, A) != 1 {
		t.Fatal("count after first commit")
	}
	// Overwrite the middle: A splits around B.
	commit(t, s, f.Ino, ext(1030, 20, B, 5, 40))
	wantLayout(t, s, f.Ino, 1100,
		ext(1000, 30, A, 0, 100),
		ext(1030, 20, B, 5, 40),
		ext(1050, 50, A, 50, 100))
	if refCount(t, s, A) != 2 || refCount(t, s, B) != 1 {
		t.Fatalf("after split: A %d (want 2) B %d (want 1)", refCount(t, s, A), refCount(t, s, B))
	}
	checkRefs(t, s, A, B)

	// Overwrite across the tail of one extent and the head of the next.
	commit(t, s, f.Ino, ext(1040, 20, C, 0, 20))
	wantLayout(t, s, f.Ino, 1100,
		ext(1000, 30, A, 0, 100),
		ext(1030, 10, B, 5, 40),
		ext(1040, 20, C, 0, 20),
		ext(1060, 40, A, 60, 100))
	checkRefs(t, s, A, B, C)

	// Overwrite covering several extents exactly: the covered ones go.
	commit(t, s, f.Ino, ext(1030, 30, A, 10, 100))
	wantLayout(t, s, f.Ino, 1100,
		ext(1000, 30, A, 0, 100),
		ext(1030, 30, A, 10, 100),
		ext(1060, 40, A, 60, 100))
	if refCount(t, s, A) != 3 || refCount(t, s, B) != 0 || refCount(t, s, C) != 0 {
		t.Fatalf("A %d B %d C %d", refCount(t, s, A), refCount(t, s, B), refCount(t, s, C))
	}
	g := garbage(t, s)
	if !g[B] || !g[C] || g[A] {
		t.Fatalf("garbage %v: want B and C, not A", g)
	}
	checkRefs(t, s, A, B, C)

	// Two extents in one commit that overlap each other: the later wins.
	commit(t, s, f.Ino, ext(1000, 40, B, 0, 40), ext(1010, 10, C, 0, 20))
	want := []wire.Extent{
		ext(1000, 10, B, 0, 40),
		ext(1010, 10, C, 0, 20),
		ext(1020, 20, B, 20, 40),
		ext(1040, 20, A, 20, 100),
		ext(1060, 40, A, 60, 100),
	}
	wantLayout(t, s, f.Ino, 1100, want...)
	checkRefs(t, s, A, B, C)

	// An identical re-commit (a retried write) changes nothing.
	commit(t, s, f.Ino, ext(1060, 40, A, 60, 100))
	wantLayout(t, s, f.Ino, 1100, want...)
	if refCount(t, s, A) != 2 || refCount(t, s, B) != 2 || refCount(t, s, C) != 1 {
		t.Fatalf("after a retried commit: A %d (want 2) B %d (want 2) C %d (want 1)", refCount(t, s, A), refCount(t, s, B), refCount(t, s, C))
	}
	checkRefs(t, s, A, B, C)
}

func TestTruncateTrims(t *testing.T) {
	s := newStore(t)
	f := mk(t, s, RootIno, "f", modeFile)
	A, B := block.Sum([]byte("A")), block.Sum([]byte("B"))
	commit(t, s, f.Ino, ext(0, 100, A, 0, 100), ext(100, 100, B, 0, 100), ext(300, 50, A, 50, 100))
	truncate(t, s, f.Ino, 150)
	wantLayout(t, s, f.Ino, 150, ext(0, 100, A, 0, 100), ext(100, 50, B, 0, 100))
	if refCount(t, s, A) != 1 || refCount(t, s, B) != 1 {
		t.Fatal("counts after trimming")
	}
	checkRefs(t, s, A, B)
	truncate(t, s, f.Ino, 100) // exactly at an extent boundary
	wantLayout(t, s, f.Ino, 100, ext(0, 100, A, 0, 100))
	if refCount(t, s, B) != 0 || !hasGarbage(t, s, B) {
		t.Fatal("B still referenced after truncate")
	}
	truncate(t, s, f.Ino, 1000) // up: a hole, no extents
	wantLayout(t, s, f.Ino, 1000, ext(0, 100, A, 0, 100))
	truncate(t, s, f.Ino, 1)
	wantLayout(t, s, f.Ino, 1, ext(0, 1, A, 0, 100))
	truncate(t, s, f.Ino, 0)
	wantLayout(t, s, f.Ino, 0)
	if refCount(t, s, A) != 0 || !hasGarbage(t, s, A) {
		t.Fatal("A still referenced after truncate to 0")
	}
	checkRefs(t, s, A, B)
}

// TestLargeOffsets exercises extents far apart and near block.MaxSize,
// where punch's seek (from - MaxSize) matters.
func TestLargeOffsets(t *testing.T) {
	s := newStore(t)
	f := mk(t, s, RootIno, "f", modeFile)
	A, B := block.Sum([]byte("A")), block.Sum([]byte("B"))
	const M = block.MaxSize
	commit(t, s, f.Ino, ext(10, M, A, 0, M), ext(10+M, M, B, 0, M))
	// Overwrite one byte near the end of A: found although A starts MaxSize before.
	commit(t, s, f.Ino, ext(M+5, 1, B, 7, M))
	wantLayout(t, s, f.Ino, 10+2*M,
		ext(10, M-5, A, 0, M),
		ext(M+5, 1, B, 7, M),
		ext(M+6, 4, A, M-4, M),
		ext(10+M, M, B, 0, M))
	truncate(t, s, f.Ino, M+7)
	wantLayout(t, s, f.Ino, M+7, ext(10, M-5, A, 0, M), ext(M+5, 1, B, 7, M), ext(M+6, 1, A, M-4, M))
	checkRefs(t, s, A, B)
	if refCount(t, s, A) != 2 || refCount(t, s, B) != 1 {
		t.Fatalf("A %d B %d", refCount(t, s, A), refCount(t, s, B))
	}
}

func TestUnlinkDropsRefs(t *testing.T) {
	s := newStore(t)
	f := mk(t, s, RootIno, "f", modeFile)
	g := mk(t, s, RootIno, "g", modeFile)
	A, B := block.Sum([]byte("A")), block.Sum([]byte("B"))
	commit(t, s, f.Ino, ext(0, 100, A, 0, 100), ext(100, 10, B, 0, 10))
	commit(t, s, g.Ino, ext(0, 50, A, 50, 100)) // shared block
	if refCount(t, s, A) != 2 {
		t.Fatal("shared block count")
	}
	s.link(&wire.LinkReq{Ino: f.Ino, Parent: RootIno, Name: "f2"})
	if err := unlink(s, RootIno, "f"); err != nil {
		t.Fatal(err)
	}
	if refCount(t, s, A) != 2 || refCount(t, s, B) != 1 {
		t.Fatal("unlinking one of two names dropped references")
	}
	if err := unlink(s, RootIno, "f2"); err != nil {
		t.Fatal(err)
	}
	if refCount(t, s, A) != 1 || refCount(t, s, B) != 0 || !hasGarbage(t, s, B) || hasGarbage(t, s, A) {
		t.Fatalf("after the last unlink: A %d B %d garbage %v", refCount(t, s, A), refCount(t, s, B), garbage(t, s))
	}
	// Replacing g by rename drops its references too.
	h := mk(t, s, RootIno, "h", modeFile)
	if err := rename(s, RootIno, "h", RootIno, "g", 0); err != nil {
		t.Fatal(err)
	}
	_ = h
	if refCount(t, s, A) != 0 || !hasGarbage(t, s, A) {
		t.Fatal("rename over a file kept its references")
	}
	checkRefs(t, s, A, B)
}

// TestRefcountProperty runs random commits, truncates, punched holes,
// links, unlinks and renames over a few files and a small pool of blocks (so that blocks are
// shared within and across files), and after every step compares each
// file's layout with a model, unit by unit, and its stored bytes with its
// extents, and checks the reference count invariant over all E and R keys.
func TestRefcountProperty(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { refcountProperty(t, seed, 150) })
	}
}

func refcountProperty(t *testing.T, seed uint64, steps int) {
	const unit = 4096                       // offsets and lengths are multiples of this
	const maxUnits = block.MaxSize/unit + 2 // files span a few blocks' worth
	rng := newRand(seed)
	s := newStore(t)

	type blk struct {
		id    block.ID
		units uint32
	}
	pool := make([]blk, 6)
	for i := range pool {
		pool[i] = blk{block.Sum([]byte{byte(seed), byte(i)}), uint32(1 + rng.IntN(block.MaxSize/unit))}
	}
	pool[0].units = block.MaxSize / unit // one full-size block
	type cell struct {
		set  bool
		blk  int
		boff uint32
	}
	type file struct {
		ino   uint64
		size  uint64 // in bytes
		units []cell // model, one cell per unit
		names int
	}
	var files []*file
	byName := map[string]*file{}
	newFile := func(name string) {
		a := mk(t, s, RootIno, name, modeFile)
		f := &file{ino: a.Ino, units: make([]cell, 3*maxUnits), names: 1}
		files = append(files, f)
		byName[name] = f
	}
	for i := 0; i < 3; i++ {
		newFile(fmt.Sprint("f", i))
	}
	var seen []block.ID // blocks some commit named
	nameList := func() []string {
		var ns []string
		for n := range byName {
			ns = append(ns, n)
		}
		slices.Sort(ns)
		return ns
	}
	dropName := func(name string) {
		f := byName[name]
		delete(byName, name)
		f.names--
		if f.names == 0 {
			files = slices.DeleteFunc(files, func(x *file) bool { return x == f })
		}
	}

	for step := 0; step < steps; step++ {
		ns := nameList()
		name := ns[rng.IntN(len(ns))]
		f := byName[name]
		var what string
		switch op := rng.IntN(11); {
		case op < 5: // commit 1-3 extents
			var es []wire.Extent
			for k := 0; k < 1+rng.IntN(3); k++ {
				bi := rng.IntN(len(pool))
				b := pool[bi]
				n := 1 + rng.IntN(int(b.units))
				boff := rng.IntN(int(b.units) - n + 1)
				off := rng.IntN(2 * maxUnits)
				es = append(es, ext(uint64(off)*unit, uint32(n)*unit, b.id, uint32(boff)*unit, b.units*unit))
				if !slices.Contains(seen, b.id) {
					seen = append(seen, b.id)
				}
				for u := 0; u < n; u++ {
					f.units[off+u] = cell{true, bi, uint32(boff + u)}
				}
				f.size = max(f.size, uint64(off+n)*unit)
			}
			commit(t, s, f.ino, es...)
			what = fmt.Sprintf("commit %s %+v", name, es)
		case op < 7: // truncate, to any byte
			size := uint64(rng.IntN(int(f.size/unit)+3)) * unit
			if rng.IntN(3) == 0 && size > 0 {
				size -= uint64(1 + rng.IntN(unit-1)) // mid-unit: the model keeps the partial unit
			}
			truncate(t, s, f.ino, size)
			if size < f.size {
				for u := (size + unit - 1) / unit; u < uint64(len(f.units)); u++ {
					f.units[u] = cell{}
				}
			}
			f.size = size
			what = fmt.Sprintf("truncate %s to %d", name, size)
		case op < 8: // punch a hole
			from := uint64(rng.IntN(int(f.size/unit) + 2))
			n := uint64(1 + rng.IntN(maxUnits))
			req := &wire.FallocateReq{Ino: f.ino, Off: from * unit, Len: n * unit, Mode: wire.FallocPunchHole | wire.FallocKeepSize}
			if _, err := s.fallocate(req); err != nil {
				t.Fatal(err)
			}
			for u := from; u < min(from+n, uint64(len(f.units))); u++ {
				f.units[u] = cell{}
			}
			what = fmt.Sprintf("punch %s [%d,%d)", name, req.Off, req.Off+req.Len)
		case op < 9: // hard link
			nn := fmt.Sprint("l", step)
			if _, _, err := s.link(&wire.LinkReq{Ino: f.ino, Parent: RootIno, Name: nn}); err != nil {
				t.Fatal(err)
			}
			byName[nn] = f
			f.names++
			what = "link " + name + " " + nn
		case op < 10: // unlink, then make a fresh file if few are left
			if err := unlink(s, RootIno, name); err != nil {
				t.Fatal(err)
			}
			dropName(name)
			if len(byName) < 3 {
				newFile(fmt.Sprint("n", step))
			}
			what = "unlink " + name
		default: // rename onto another name (maybe replacing)
			other := ns[rng.IntN(len(ns))]
			if err := rename(s, RootIno, name, RootIno, other, 0); err != nil {
				t.Fatal(err)
			}
			if other != name && byName[other] != f {
				dropName(other)
				delete(byName, name)
				byName[other] = f
			}
			what = "rename " + name + " " + other
		}
		// Compare every live file with the model.
		for _, f := range files {
			l, err := s.layout(f.ino)
			if err != nil {
				t.Fatalf("step %d (%s): layout %d: %v", step, what, f.ino, err)
			}
			if l.Size != f.size {
				t.Fatalf("step %d (%s): ino %d size %d, model %d", step, what, f.ino, l.Size, f.size)
			}
			got := make([]cell, len(f.units))
			held := uint64(0)
			for _, e := range l.Extents {
				held += uint64(e.Len)
				bi := slices.IndexFunc(pool, func(b blk) bool { return b.id == e.Block })
				if bi < 0 || e.BlockLen != pool[bi].units*unit {
					t.Fatalf("step %d: extent %+v names an unknown block or the wrong length", step, e)
				}
				// A truncate mid-unit leaves a partial unit: count it by its start.
				if e.Off%unit != 0 || e.BlockOff%unit != 0 {
					t.Fatalf("step %d (%s): extent %+v not unit-aligned", step, what, e)
				}
				for u := uint64(0); u*unit < uint64(e.Len); u++ {
					got[e.Off/unit+u] = cell{true, bi, e.BlockOff/unit + uint32(u)}
				}
			}
			if l.Attr.Stored != held {
				t.Fatalf("step %d (%s): ino %d says it stores %d bytes, its extents hold %d", step, what, f.ino, l.Attr.Stored, held)
			}
			// Units past the size may still be set in the model only when
			// the size cut them mid-way; the store keeps the partial unit.
			for u := range got {
				if got[u] != f.units[u] {
					t.Fatalf("step %d (%s): ino %d unit %d: store %+v, model %+v", step, what, f.ino, u, got[u], f.units[u])
				}
			}
		}
		checkRefs(t, s, seen...)
		checkInodeCount(t, s)
	}
}

// checkInodeCount compares the statfs inode counter with the I keys.
func checkInodeCount(t *testing.T, s *store) {
	t.Helper()
	n := uint64(0)
	s.view(func(tx *txn) error {
		it := tx.NewIterator(badger.IteratorOptions{Prefix: []byte{tInode}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	s.mu.Lock()
	counted := s.mu.inodes
	s.mu.Unlock()
	if counted != n {
		t.Fatalf("inode counter %d, %d I keys", counted, n)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	s, err := openStore(dir, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	A := block.Sum([]byte("A"))
	d := mk(t, s, RootIno, "d", modeDir)
	f := mk(t, s, d.Ino, "f", modeFile)
	l := mk(t, s, RootIno, "l", modeLink)
	commit(t, s, f.Ino, ext(0, 100, A, 0, 100), ext(200, 50, A, 10, 100))
	s.link(&wire.LinkReq{Ino: f.Ino, Parent: RootIno, Name: "f2"})
	maxIno := f.Ino
	for i := 0; i < 20; i++ {
		a := mk(t, s, RootIno, fmt.Sprint("tmp", i), modeFile)
		maxIno = max(maxIno, a.Ino)
	}
	for i := 0; i < 20; i += 2 {
		unlink(s, RootIno, fmt.Sprint("tmp", i)) // freed numbers must not come back either
	}
	rootNames := names(t, s, RootIno)
	fAttr := attr(t, s, f.Ino)
	if err := s.close(); err != nil {
		t.Fatal(err)
	}

	for round := 0; round < 2; round++ {
		s, err = openStore(dir, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		if got := names(t, s, RootIno); !slices.Equal(got, rootNames) {
			t.Fatalf("round %d: root lists %v, want %v", round, got, rootNames)
		}
		if lookupIno(t, s, d.Ino, "f") != f.Ino || attr(t, s, f.Ino) != fAttr {
			t.Fatalf("round %d: f changed: %+v vs %+v", round, attr(t, s, f.Ino), fAttr)
		}
		if tgt, _ := s.readlink(l.Ino); tgt != "target" {
			t.Fatal("symlink target lost")
		}
		if rawInode(t, s, d.Ino).Parent != RootIno || nlink(t, s, RootIno) != 3 {
			t.Fatal("directory structure lost")
		}
		wantLayout(t, s, f.Ino, 250, ext(0, 100, A, 0, 100), ext(200, 50, A, 10, 100))
		if refCount(t, s, A) != 2 {
			t.Fatal("reference count lost")
		}
		checkRefs(t, s, A)
		checkInodeCount(t, s)
		a := mk(t, s, RootIno, fmt.Sprint("new", round), modeFile)
		if a.Ino <= maxIno {
			t.Fatalf("round %d: reopened store handed out inode %d, not above %d", round, a.Ino, maxIno)
		}
		maxIno = a.Ino
		rootNames = names(t, s, RootIno)
		if err := s.close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestInodeBatchBoundary allocates past one reservation batch, so the
// limit is raised inside an operation, then reopens: numbers stay unique.
func TestInodeBatchBoundary(t *testing.T) {
	if testing.Short() {
		t.Skip("makes over 4096 files")
	}
	dir := t.TempDir()
	s, err := openStore(dir, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{RootIno: true}
	var last uint64
	for i := 0; i < inoBatch+10; i++ {
		a, _, err := s.make(&wire.MakeReq{Parent: RootIno, Name: fmt.Sprint(i), Mode: modeFile})
		if err != nil {
			t.Fatal(err)
		}
		if seen[a.Ino] || a.Ino <= last {
			t.Fatalf("inode %d handed out twice or out of order", a.Ino)
		}
		seen[a.Ino] = true
		last = a.Ino
	}
	// A failed make does not burn the count used by statfs.
	s.make(&wire.MakeReq{Parent: RootIno, Name: "0", Mode: modeFile})
	checkInodeCount(t, s)
	s.close()
	s, err = openStore(dir, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	a := mk(t, s, RootIno, "after", modeFile)
	if a.Ino <= last {
		t.Fatalf("after reopen: inode %d, not above %d", a.Ino, last)
	}
	checkInodeCount(t, s)
}
