package metaserver

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cairn-fs/cairn/internal/wire"
	badger "github.com/dgraph-io/badger/v4"
)

// txn is one Badger transaction with typed accessors for the tables in
// keys.go. now is the transaction's clock for every timestamp it sets.
type txn struct {
	*badger.Txn
	now        int64
	s          *store // nil in views
	inodeDelta int64
	aclDelta   int64 // ACLs added less those removed (acl.go)
	// touched holds, for change (store.go), each directory whose
	// entries this transaction changed, and its ctime before; nil
	// outside change. A change touches one or two directories:
	// touchedBuf holds them without an allocation.
	touched    []touchedDir
	touchedBuf [2]touchedDir
	// inodeWrites logs the inodes this transaction wrote, for the
	// directory cache (dircache.go); a change writes up to four (a
	// rename's two inodes and two directories), in inodeWritesBuf.
	inodeWrites    []inodeWrite
	inodeWritesBuf [4]inodeWrite
}

type touchedDir struct {
	n   *inode
	was int64
}

// get decodes the value at key into m; ErrNotFound if it is absent.
func (tx *txn) get(key []byte, m wire.Message) error {
	item, err := tx.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return wire.ErrNotFound
	}
	if err != nil {
		return err
	}
	return item.Value(func(b []byte) error {
		if err := wire.Unmarshal(b, m); err != nil {
			return fmt.Errorf("corrupt metadata record %x: %w", key, err)
		}
		return nil
	})
}

// putCap is the room put starts a record's encoding with: enough for an
// inode without a long symlink target, so it is encoded in one
// allocation.
const putCap = 128

func (tx *txn) put(key []byte, m wire.Message) error {
	return tx.Set(key, m.Append(make([]byte, 0, putCap)))
}

func (tx *txn) getInode(ino uint64) (*inode, error) {
	if n, ok := tx.cachedDir(ino); ok {
		return n, nil
	}
	n := &inode{}
	if err := tx.get(inodeKey(ino), n); err != nil {
		if errors.Is(err, wire.ErrNotFound) {
			return nil, wire.Errorf(wire.CodeNotFound, "inode %d", ino)
		}
		return nil, err
	}
	tx.cacheDir(n)
	return n, nil
}

func (tx *txn) putInode(n *inode) error {
	tx.logInodeWrite(n.Ino, n)
	return tx.put(inodeKey(n.Ino), n)
}

func (tx *txn) deleteInode(ino uint64) error {
	tx.inodeDelta--
	if err := tx.deleteXattrs(ino); err != nil {
		return err
	}
	tx.logInodeWrite(ino, nil)
	return tx.Delete(inodeKey(ino))
}

// getDir loads ino and checks that it is a directory.
func (tx *txn) getDir(ino uint64) (*inode, error) {
	n, err := tx.getInode(ino)
	if err != nil {
		return nil, err
	}
	if !n.isDir() {
		return nil, wire.Errorf(wire.CodeNotDir, "inode %d", ino)
	}
	if n.Nlink == 0 {
		// Removed, kept only while open: as Linux's dead directories.
		return nil, wire.Errorf(wire.CodeNotFound, "directory %d was removed", ino)
	}
	return n, nil
}

// getDentry returns the entry name in parent, or ErrNotFound.
func (tx *txn) getDentry(parent uint64, name string) (*dentry, error) {
	d := &dentry{}
	if err := tx.get(dentryKey(parent, name), d); err != nil {
		return nil, err
	}
	return d, nil
}

func (tx *txn) putDentry(parent uint64, name string, n *inode) error {
	return tx.put(dentryKey(parent, name), &dentry{Ino: n.Ino, Mode: n.Mode})
}

// dirEmpty reports whether directory ino has no entries.
func (tx *txn) dirEmpty(ino uint64) bool { return !tx.hasKeys(dentryPrefix(ino)) }

// hasKeys reports whether any key starts with prefix.
func (tx *txn) hasKeys(prefix []byte) bool {
	it := tx.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
	defer it.Close()
	it.Rewind()
	return it.Valid()
}

// touchDir sets a directory's mtime and ctime to now, as an entry change does.
func (tx *txn) touchDir(n *inode) {
	seen := slices.ContainsFunc(tx.touched, func(d touchedDir) bool { return d.n.Ino == n.Ino })
	if !seen && tx.touched != nil {
		tx.touched = append(tx.touched, touchedDir{n, n.Ctime})
	}
	n.Mtime, n.Ctime = tx.now, tx.now
}
