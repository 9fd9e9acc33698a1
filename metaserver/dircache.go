package metaserver

// The directory cache spares update transactions a Badger read of the
// directories they change: every create, unlink and rename first reads
// its parent, which is usually the directory the last change wrote.
//
// It holds committed directory inodes only. Only update transactions,
// which hold store.mu, read or write it; each one logs the inodes it
// writes or deletes, and the log reaches the cache only after the
// transaction committed. A failed commit empties the cache: what Badger
// kept of it is not known. Views, which run without store.mu, read
// Badger directly.

// dirCacheMax bounds the directories cached; a full cache starts over.
const dirCacheMax = 4096

// inodeWrite is one inode a transaction wrote: a copy of a directory's
// record as written, or nil for any other inode and for a deletion.
type inodeWrite struct {
	ino uint64
	dir *inode
}

// cachedDir returns a copy of directory ino's committed inode if the
// cache has it and this transaction has not written ino.
func (tx *txn) cachedDir(ino uint64) (*inode, bool) {
	if tx.s == nil || tx.wrote(ino) {
		return nil, false
	}
	n, ok := tx.s.mu.dirs[ino]
	return &n, ok
}

// cacheDir keeps n, just read from Badger, if it is a directory whose
// record this transaction has not written (so n is the committed one).
func (tx *txn) cacheDir(n *inode) {
	if tx.s == nil || !n.isDir() || tx.wrote(n.Ino) {
		return
	}
	tx.s.cacheDirLocked(n)
}

func (tx *txn) wrote(ino uint64) bool {
	for _, w := range tx.inodeWrites {
		if w.ino == ino {
			return true
		}
	}
	return false
}

// logInodeWrite notes that the transaction wrote n (or deleted ino, with
// n nil).
func (tx *txn) logInodeWrite(ino uint64, n *inode) {
	if tx.s == nil {
		return
	}
	w := inodeWrite{ino: ino}
	if n != nil && n.isDir() {
		c := *n
		w.dir = &c
	}
	tx.inodeWrites = append(tx.inodeWrites, w)
}

func (s *store) cacheDirLocked(n *inode) {
	if s.mu.dirs == nil || len(s.mu.dirs) >= dirCacheMax {
		s.mu.dirs = make(map[uint64]inode)
	}
	s.mu.dirs[n.Ino] = *n
}

// committed applies a committed transaction's inode writes to the cache.
func (s *store) committed(writes []inodeWrite) {
	for _, w := range writes {
		if w.dir != nil {
			s.cacheDirLocked(w.dir)
		} else {
			delete(s.mu.dirs, w.ino)
		}
	}
}
