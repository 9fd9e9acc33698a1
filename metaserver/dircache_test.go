package metaserver

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/cairn-fs/cairn/internal/wire"
)

// TestDirCacheFollowsCommits: after every change of a random sequence
// (mkdir, rmdir, create, unlink, rename within and across directories,
// exchange, and changes that fail halfway), each directory's inode as an
// update transaction reads it (through the directory cache) equals what
// Badger holds, and a removed directory is gone from both.
func TestDirCacheFollowsCommits(t *testing.T) {
	s := newStore(t)
	rng := rand.New(rand.NewPCG(1, 2))
	dirs := []uint64{RootIno}
	names := []string{"a", "b", "c", "d"}
	pick := func() uint64 { return dirs[rng.IntN(len(dirs))] }
	name := func() string { return names[rng.IntN(len(names))] }
	for i := range 3000 {
		var err error
		switch rng.IntN(7) {
		case 0:
			var a wire.Attr
			a, _, err = s.make(&wire.MakeReq{Parent: pick(), Name: name(), Mode: modeDir})
			if err == nil {
				dirs = append(dirs, a.Ino)
			}
		case 1:
			_, _, err = s.make(&wire.MakeReq{Parent: pick(), Name: name(), Mode: modeFile})
		case 2:
			// A symlink without a target fails inside its transaction,
			// after reading the parent: nothing of it may stay.
			_, _, err = s.make(&wire.MakeReq{Parent: pick(), Name: name(), Mode: syscall.S_IFLNK | 0o777})
		case 3:
			_, _, err = s.remove(&wire.RemoveReq{Parent: pick(), Name: name(), Dir: true})
		case 4:
			_, _, err = s.remove(&wire.RemoveReq{Parent: pick(), Name: name()})
		case 5, 6:
			var flags uint32
			if rng.IntN(4) == 0 {
				flags = wire.RenameExchange
			}
			_, _, err = s.rename(&wire.RenameReq{OldParent: pick(), OldName: name(), NewParent: pick(), NewName: name(), Flags: flags})
		}
		_ = err // most random changes fail (missing, exists, not empty): that is part of the test
		for _, ino := range dirs {
			if got, want := cachedRead(t, s, ino), badgerRead(t, s, ino); got != want {
				t.Fatalf("step %d: directory %d through the cache: %s; in Badger: %s", i, ino, got, want)
			}
		}
	}
}

// cachedRead reads ino in an update transaction, as a change does.
func cachedRead(t *testing.T, s *store, ino uint64) string { return readInode(t, s.update, ino) }

// badgerRead reads ino in a view, which does not use the cache.
func badgerRead(t *testing.T, s *store, ino uint64) string { return readInode(t, s.view, ino) }

func readInode(t *testing.T, run func(func(tx *txn) error) error, ino uint64) string {
	var out string
	err := run(func(tx *txn) error {
		n, err := tx.getInode(ino)
		out = fmt.Sprintf("%+v %v", n, err)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPutAllWritesEachInodeOnce: a rename within one directory passes
// the directory twice; it is encoded and written once, as last passed.
func TestPutAllWritesEachInodeOnce(t *testing.T) {
	s := newStore(t)
	f := mk(t, s, RootIno, "f", modeFile)
	err := s.update(func(tx *txn) error {
		src, err := tx.getInode(f.Ino)
		if err != nil {
			return err
		}
		oldDir, err := tx.getDir(RootIno)
		if err != nil {
			return err
		}
		newDir := *oldDir
		newDir.Nlink = 9
		if err := tx.putAll(src, oldDir, &newDir); err != nil {
			return err
		}
		if len(tx.inodeWrites) != 2 || tx.inodeWrites[1].dir.Nlink != 9 {
			t.Errorf("writes %+v; want the file and the last copy of the directory", tx.inodeWrites)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if a, err := s.getAttr(RootIno); err != nil || a.Nlink != 9 {
		t.Fatalf("directory after putAll: nlink %d, %v; want the last copy's 9", a.Nlink, err)
	}
}
