package metaserver

import (
	"errors"
	"slices"
	"syscall"
	"testing"

	"github.com/cairn-fs/cairn/internal/wire"
	badger "github.com/dgraph-io/badger/v4"
)

// xattrKeys counts the X keys of ino left in the store.
func xattrKeys(t *testing.T, s *store, ino uint64) int {
	t.Helper()
	n := 0
	err := s.db.View(func(btx *badger.Txn) error {
		it := btx.NewIterator(badger.IteratorOptions{Prefix: xattrPrefix(ino)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func setX(t *testing.T, s *store, ino uint64, name, value string) wire.Attr {
	t.Helper()
	a, err := s.setXattr(&wire.SetXattrReq{Ino: ino, Name: name, Value: []byte(value)})
	if err != nil {
		t.Fatalf("setxattr %d %q: %v", ino, name, err)
	}
	return a
}

func TestXattrGoesWithItsInode(t *testing.T) {
	s := newStore(t)
	f := mk(t, s, RootIno, "f", modeFile)
	d := mk(t, s, RootIno, "d", modeDir)
	other := mk(t, s, RootIno, "other", modeFile)
	for _, ino := range []uint64{f.Ino, d.Ino, other.Ino} {
		setX(t, s, ino, "user.a", "1")
		setX(t, s, ino, "trusted.b", "2")
	}
	if err := unlink(s, RootIno, "f"); err != nil {
		t.Fatal(err)
	}
	if err := rmdir(s, RootIno, "d"); err != nil {
		t.Fatal(err)
	}
	// A rename over a file deletes the replaced inode's attributes too.
	g := mk(t, s, RootIno, "g", modeFile)
	setX(t, s, g.Ino, "user.g", "3")
	if err := rename(s, RootIno, "other", RootIno, "g", 0); err != nil {
		t.Fatal(err)
	}
	for _, ino := range []uint64{f.Ino, d.Ino, g.Ino} {
		if n := xattrKeys(t, s, ino); n != 0 {
			t.Errorf("inode %d deleted, but %d xattr keys are left", ino, n)
		}
	}
	if n := xattrKeys(t, s, other.Ino); n != 2 {
		t.Errorf("renamed inode has %d xattrs, want 2", n)
	}
	names, err := s.listXattr(other.Ino)
	if err != nil || !slices.Equal(names, []string{"trusted.b", "user.a"}) {
		t.Errorf("list = %q, %v", names, err)
	}
	// An orphan (unlinked while open) keeps them until it is purged.
	h := mk(t, s, RootIno, "h", modeFile)
	setX(t, s, h.Ino, "user.h", "4")
	if _, _, err := s.remove(&wire.RemoveReq{Parent: RootIno, Name: "h", Open: []uint64{h.Ino}}); err != nil {
		t.Fatal(err)
	}
	if v, err := s.getXattr(&wire.XattrReq{Ino: h.Ino, Name: "user.h"}); err != nil || string(v) != "4" {
		t.Errorf("orphan's xattr: %q, %v", v, err)
	}
	if err := s.purge(h.Ino); err != nil {
		t.Fatal(err)
	}
	if n := xattrKeys(t, s, h.Ino); n != 0 {
		t.Errorf("purged orphan has %d xattr keys left", n)
	}
}

func TestXattrErrors(t *testing.T) {
	s := newStore(t)
	f := mk(t, s, RootIno, "f", modeFile)
	for _, tc := range []struct {
		req  wire.SetXattrReq
		code wire.Code
	}{
		{wire.SetXattrReq{Ino: f.Ino, Name: ""}, wire.CodeRange},
		{wire.SetXattrReq{Ino: f.Ino, Name: "user." + string(make([]byte, 251))}, wire.CodeRange},
		{wire.SetXattrReq{Ino: f.Ino, Name: "user.v", Value: make([]byte, wire.MaxXattrValue+1)}, wire.CodeTooBig},
		{wire.SetXattrReq{Ino: f.Ino, Name: "user.v", Flags: wire.XattrCreate | wire.XattrReplace}, wire.CodeNoData},
		{wire.SetXattrReq{Ino: f.Ino, Name: "user.v", Flags: wire.XattrReplace}, wire.CodeNoData},
		{wire.SetXattrReq{Ino: f.Ino, Name: "os2.v"}, wire.CodeNotSup},
		{wire.SetXattrReq{Ino: f.Ino, Name: aclAccess, Value: []byte{1, 2, 3}}, wire.CodeInvalid},
		{wire.SetXattrReq{Ino: 999, Name: "user.v"}, wire.CodeNotFound},
	} {
		_, err := s.setXattr(&tc.req)
		var we *wire.Error
		if !errors.As(err, &we) || we.Code != tc.code {
			t.Errorf("setxattr %q (%d bytes, flags %#x): %v, want %v", tc.req.Name, len(tc.req.Value), tc.req.Flags, err, tc.code)
		}
	}
	// Names fill at most one listxattr buffer.
	long := string(make([]byte, 200))
	var err error
	for i := 0; err == nil && i < 1000; i++ {
		_, err = s.setXattr(&wire.SetXattrReq{Ino: f.Ino, Name: "user." + long + string(rune('A'+i%26)) + string(rune('A'+i/26))})
	}
	if !errors.Is(err, &wire.Error{Code: wire.CodeNoSpace}) {
		t.Errorf("after filling the list: %v, want no space", err)
	}
}

// aclBytes builds an ACL in its xattr form from tag, perm, id triples.
func aclBytes(es ...aclEntry) []byte { return appendACL(es) }

func TestACLModeSync(t *testing.T) {
	s := newStore(t)
	f := mk(t, s, RootIno, "f", syscall.S_IFREG|0o640)
	ext := aclBytes(
		aclEntry{aclUserObj, 7, 0}, aclEntry{aclUser, 6, 1234}, aclEntry{aclGroupObj, 4, 0},
		aclEntry{aclMask, 6, 0}, aclEntry{aclOther, 1, 0})
	a := setX(t, s, f.Ino, aclAccess, string(ext))
	if a.Mode&0o777 != 0o761 {
		t.Errorf("mode after setting an extended ACL: %#o, want 0761 (the mask as the group bits)", a.Mode&0o777)
	}
	// chmod rewrites the mask, not the owning group's entry.
	if _, err := s.setAttr(&wire.SetAttrReq{Ino: f.Ino, Valid: wire.SetMode, Mode: 0o705}); err != nil {
		t.Fatal(err)
	}
	v, err := s.getXattr(&wire.XattrReq{Ino: f.Ino, Name: aclAccess})
	if err != nil {
		t.Fatal(err)
	}
	es, _ := parseACL(v)
	want := []aclEntry{{aclUserObj, 7, 0}, {aclUser, 6, 1234}, {aclGroupObj, 4, 0}, {aclMask, 0, 0}, {aclOther, 5, 0}}
	if !slices.Equal(es, want) {
		t.Errorf("ACL after chmod 0705: %v, want %v", es, want)
	}
	// An ACL of only the three base entries is the mode: not kept.
	a = setX(t, s, f.Ino, aclAccess, string(aclBytes(aclEntry{aclUserObj, 6, 0}, aclEntry{aclGroupObj, 0, 0}, aclEntry{aclOther, 4, 0})))
	if a.Mode&0o777 != 0o604 {
		t.Errorf("mode after a base ACL: %#o, want 0604", a.Mode&0o777)
	}
	if _, err := s.getXattr(&wire.XattrReq{Ino: f.Ino, Name: aclAccess}); !errors.Is(err, &wire.Error{Code: wire.CodeNoData}) {
		t.Errorf("a base ACL was kept: %v", err)
	}
}

func TestACLInherit(t *testing.T) {
	s := newStore(t)
	d := mk(t, s, RootIno, "d", syscall.S_IFDIR|0o755)
	def := aclBytes(
		aclEntry{aclUserObj, 7, 0}, aclEntry{aclGroup, 5, 77}, aclEntry{aclGroupObj, 5, 0},
		aclEntry{aclMask, 7, 0}, aclEntry{aclOther, 0, 0})
	setX(t, s, d.Ino, aclDefault, string(def))
	create := func(name string, mode uint32) wire.Attr {
		a, _, err := s.make(&wire.MakeReq{Parent: d.Ino, Name: name, Mode: mode, Umask: 0o077})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	// The default ACL replaces the umask: group bits from the mask
	// limited by the mode asked for.
	f := create("f", syscall.S_IFREG|0o666)
	if f.Mode&0o777 != 0o660 {
		t.Errorf("file under a default ACL: mode %#o, want 0660", f.Mode&0o777)
	}
	v, err := s.getXattr(&wire.XattrReq{Ino: f.Ino, Name: aclAccess})
	if err != nil {
		t.Fatalf("inherited access ACL: %v", err)
	}
	es, _ := parseACL(v)
	want := []aclEntry{{aclUserObj, 6, 0}, {aclGroup, 5, 77}, {aclGroupObj, 5, 0}, {aclMask, 6, 0}, {aclOther, 0, 0}}
	if !slices.Equal(es, want) {
		t.Errorf("inherited ACL %v, want %v", es, want)
	}
	if _, err := s.getXattr(&wire.XattrReq{Ino: f.Ino, Name: aclDefault}); err == nil {
		t.Error("a file inherited a default ACL")
	}
	sub := create("sub", syscall.S_IFDIR|0o777)
	if v, err := s.getXattr(&wire.XattrReq{Ino: sub.Ino, Name: aclDefault}); err != nil || string(v) != string(def) {
		t.Errorf("subdirectory's default ACL: %v", err)
	}
	if sub.Mode&0o777 != 0o770 {
		t.Errorf("subdirectory mode %#o, want 0770", sub.Mode&0o777)
	}
	// Without a default ACL the umask applies.
	if a, _, err := s.make(&wire.MakeReq{Parent: RootIno, Name: "masked", Mode: syscall.S_IFREG | 0o666, Umask: 0o027}); err != nil || a.Mode&0o777 != 0o640 {
		t.Errorf("umask 027 on 0666: %#o, %v", a.Mode&0o777, err)
	}
}

// TestXattrGoesWithItsInodeAfterReopen: a store reopened over a
// namespace with extended attributes still deletes a file's attributes
// with the file (unlinks look for attributes only while the namespace
// may have some).
func TestXattrGoesWithItsInodeAfterReopen(t *testing.T) {
	var f wire.Attr
	s := reopenedStore(t, func(s *store) {
		f = mk(t, s, RootIno, "f", modeFile)
		setX(t, s, f.Ino, "user.a", "1")
	})
	if err := unlink(s, RootIno, "f"); err != nil {
		t.Fatal(err)
	}
	if n := xattrKeys(t, s, f.Ino); n != 0 {
		t.Fatalf("%d attributes outlived their inode", n)
	}
}

// TestACLInheritAfterReopen: a store reopened over a namespace with a
// default ACL knows it has ACLs, so new files still inherit it (changes
// look for ACLs only while the namespace has some).
func TestACLInheritAfterReopen(t *testing.T) {
	var d wire.Attr
	s := reopenedStore(t, func(s *store) {
		d = mk(t, s, RootIno, "d", modeDir)
		def := aclBytes(aclEntry{aclUserObj, 7, 0}, aclEntry{aclUser, 5, 9}, aclEntry{aclGroupObj, 5, 0}, aclEntry{aclMask, 5, 0}, aclEntry{aclOther, 0, 0})
		setX(t, s, d.Ino, aclDefault, string(def))
	})
	f := mk(t, s, d.Ino, "f", modeFile)
	if _, err := s.getXattr(&wire.XattrReq{Ino: f.Ino, Name: aclAccess}); err != nil {
		t.Fatalf("a file made after reopening did not inherit the default ACL: %v", err)
	}
}

// reopenedStore returns a store opened over a namespace that setup made
// in a store since closed: what the store loads at open, not what it
// learned while setup ran. It is closed when the test ends.
func reopenedStore(t *testing.T, setup func(s *store)) *store {
	t.Helper()
	dir := t.TempDir()
	s, err := openStore(dir, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	setup(s)
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if s, err = openStore(dir, quietLog()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.close() })
	return s
}

// TestACLCount: the namespace's count of ACLs follows sets, inheritance,
// removals and deleted inodes (mounts skip per-inode ACL lookups at 0).
func TestACLCount(t *testing.T) {
	s := newStore(t)
	count := func(want uint64) {
		t.Helper()
		if n, err := s.aclCount(); err != nil || n != want {
			t.Fatalf("ACL count %d, %v; want %d", n, err, want)
		}
		s.mu.Lock()
		inMemory := s.mu.acls
		s.mu.Unlock()
		if inMemory != want {
			t.Fatalf("ACL count in memory %d; want %d", inMemory, want)
		}
	}
	count(0)
	d := mk(t, s, RootIno, "d", modeDir)
	def := aclBytes(aclEntry{aclUserObj, 7, 0}, aclEntry{aclUser, 5, 9}, aclEntry{aclGroupObj, 5, 0}, aclEntry{aclMask, 5, 0}, aclEntry{aclOther, 0, 0})
	setX(t, s, d.Ino, aclDefault, string(def))
	count(1)
	setX(t, s, d.Ino, aclDefault, string(def)) // replacing is not a new one
	count(1)
	mk(t, s, d.Ino, "f", modeFile) // inherits an access ACL
	count(2)
	mk(t, s, d.Ino, "sub", modeDir) // inherits both
	count(4)
	if err := unlink(s, d.Ino, "f"); err != nil {
		t.Fatal(err)
	}
	count(3)
	if _, err := s.removeXattr(&wire.XattrReq{Ino: d.Ino, Name: aclDefault}); err != nil {
		t.Fatal(err)
	}
	count(2)
	// A base ACL is only a mode: not counted.
	g := mk(t, s, RootIno, "g", modeFile)
	setX(t, s, g.Ino, aclAccess, string(aclBytes(aclEntry{aclUserObj, 6, 0}, aclEntry{aclGroupObj, 4, 0}, aclEntry{aclOther, 4, 0})))
	count(2)
}
