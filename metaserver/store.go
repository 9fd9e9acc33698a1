package metaserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/cairn-fs/cairn/internal/wire"
	badger "github.com/dgraph-io/badger/v4"
)

// RootIno is the inode number of the filesystem's root directory.
const RootIno = 1

// inoBatch is how many inode numbers are reserved per synced write of the
// allocator's limit; numbers reserved but unused at a crash are skipped.
const inoBatch = 1 << 12

// store is the namespace in Badger. Writers are serialized by mu, which
// makes every operation trivially linearizable and conflict-free; readers
// run concurrently in Badger views.
type store struct {
	db  *badger.DB
	log *slog.Logger

	mu struct {
		sync.Mutex
		nextIno  uint64           // next inode number to hand out
		inoLimit uint64           // persisted: numbers >= this are unreserved
		inodes   uint64           // live inode count, for statfs
		acls     uint64           // committed ACL count, as keyACLCount holds it (acl.go)
		dirs     map[uint64]inode // committed directory inodes (dircache.go)
		// xattrs: the namespace may have extended attributes; false
		// only while none was found at open nor set since (xattr.go).
		xattrs bool
	}
	syncReq chan chan error // group commit: one Sync serves every waiter
	done    chan struct{}
	wg      sync.WaitGroup
}

// openStore opens (or creates) the namespace in dir, with Badger's caches
// of their default size.
func openStore(dir string, log *slog.Logger) (*store, error) {
	return openStoreSized(dir, log, DefaultCacheBytes)
}

// DefaultCacheBytes is the size of Badger's caches (Config.CacheBytes)
// unless told otherwise.
const DefaultCacheBytes = 96 << 20

// openStoreSized opens the namespace with cacheBytes for Badger's block
// cache (two thirds) and its cache of table indexes and Bloom filters
// (one third).
func openStoreSized(dir string, log *slog.Logger, cacheBytes int64) (*store, error) {
	opts := badger.DefaultOptions(dir).
		WithLogger(nil).
		WithSyncWrites(false). // group commit below instead
		// Writers are serialized by store.mu, so no two transactions
		// can conflict: tracking every key read for conflict checks is
		// pure cost. Badger's expvar metrics are not exported.
		WithDetectConflicts(false).
		WithMetricsEnabled(false).
		WithNumVersionsToKeep(1).
		WithCompactL0OnClose(true).
		// Bounded memory: the namespace's hot part is small. The memtable
		// stays 64 MiB, which sets the largest transaction (a commit of
		// 50k extents, an unlink of a file of as many); at most three are
		// in memory. Table indexes and Bloom filters, which Badger keeps
		// in memory for every table unless they have a cache, grow with
		// the namespace: they get one.
		WithBlockCacheSize(cacheBytes * 2 / 3).
		WithIndexCacheSize(cacheBytes / 3).
		WithNumMemtables(3)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open metadata store in %s: %w", dir, err)
	}
	s := &store{db: db, log: log, syncReq: make(chan chan error, 64), done: make(chan struct{})}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.countStored(); err != nil {
		db.Close()
		return nil, fmt.Errorf("count the bytes files store in %s: %w", dir, err)
	}
	s.wg.Add(1)
	go s.syncLoop()
	return s, nil
}

func (s *store) close() error {
	close(s.done)
	s.wg.Wait()
	if err := s.db.Sync(); err != nil {
		s.db.Close()
		return err
	}
	return s.db.Close()
}

// init creates the root directory on first start and loads the allocator.
func (s *store) init() error {
	return s.db.Update(func(btx *badger.Txn) error {
		tx := &txn{Txn: btx, now: time.Now().UnixNano()}
		limit, err := tx.getU64(keyInoLimit)
		if err != nil {
			return err
		}
		if limit == 0 {
			now := tx.now
			root := &inode{Attr: wire.Attr{
				Ino: RootIno, Mode: syscall.S_IFDIR | 0o755, Nlink: 2, Size: 4096,
				Atime: now, Mtime: now, Ctime: now,
			}, Parent: RootIno}
			if err := tx.putInode(root); err != nil {
				return err
			}
			limit = RootIno + 1
		}
		// Skip whatever the previous run had reserved: it may be in use.
		s.mu.nextIno = limit
		s.mu.inoLimit = limit + inoBatch
		if err := tx.putU64(keyInoLimit, s.mu.inoLimit); err != nil {
			return err
		}
		if s.mu.acls, err = tx.aclCount(); err != nil {
			return err
		}
		s.mu.xattrs = tx.hasKeys([]byte{tXattr})
		it := btx.NewIterator(badger.IteratorOptions{Prefix: []byte{tInode}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			s.mu.inodes++
		}
		return nil
	})
}

// update runs fn in one read-write transaction, serialized with every
// other writer. The transaction is committed unsynced; callers that must
// be durable call sync after.
func (s *store) update(fn func(tx *txn) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	btx := s.db.NewTransaction(true)
	defer btx.Discard()
	tx := &txn{Txn: btx, now: time.Now().UnixNano(), s: s}
	tx.inodeWrites = tx.inodeWritesBuf[:0]
	if err := fn(tx); err != nil {
		return err
	}
	if err := btx.Commit(); err != nil {
		s.commitFailed()
		if errors.Is(err, badger.ErrTxnTooBig) {
			return wire.Errorf(wire.CodeTooBig, "operation too large for one transaction")
		}
		return fmt.Errorf("commit: %w", err)
	}
	s.mu.inodes = uint64(int64(s.mu.inodes) + tx.inodeDelta)
	s.mu.acls = uint64(int64(s.mu.acls) + tx.aclDelta)
	s.committed(tx.inodeWrites)
	return nil
}

// commitFailed drops what the store keeps in memory of the committed
// namespace and reloads it from Badger: what Badger kept of a failed
// commit is not known. Called with mu held.
func (s *store) commitFailed() {
	s.mu.dirs = nil
	err := s.db.View(func(btx *badger.Txn) error {
		n, err := (&txn{Txn: btx}).aclCount()
		s.mu.acls = n
		return err
	})
	if err != nil {
		s.mu.acls = 1 // unknown: look for ACLs
	}
}

// dirChange is what a change did to the directories whose entries it
// changed: each one's ctime before, its attributes after (in its inode
// as the transaction wrote it), and the change's time, which is each
// one's ctime after (see wire.ChangeResp).
type dirChange struct {
	dirs []touchedDir
	at   int64
}

// dir returns what the change did to directory ino: its attributes
// after and its ctime before; Ino 0 if it did not touch ino.
func (c dirChange) dir(ino uint64) (after wire.Attr, was int64) {
	for _, d := range c.dirs {
		if d.n.Ino == ino {
			return d.n.Attr, d.was
		}
	}
	return wire.Attr{}, 0
}

// change is update for a change of directory entries.
func (s *store) change(fn func(tx *txn) error) (dirChange, error) {
	var c dirChange
	err := s.update(func(tx *txn) error {
		tx.touched = tx.touchedBuf[:0]
		if err := fn(tx); err != nil {
			return err
		}
		c = dirChange{dirs: tx.touched, at: tx.now}
		return nil
	})
	return c, err
}

// view runs fn in a read-only snapshot.
func (s *store) view(fn func(tx *txn) error) error {
	return s.db.View(func(btx *badger.Txn) error {
		return fn(&txn{Txn: btx, now: time.Now().UnixNano()})
	})
}

// sync makes every committed transaction durable. Concurrent callers
// share one fsync (group commit).
func (s *store) sync() error {
	ch := make(chan error, 1)
	select {
	case s.syncReq <- ch:
	case <-s.done:
		return wire.Errorf(wire.CodeUnavailable, "metaserver shutting down")
	}
	return <-ch
}

// syncLoop serves sync requests, and syncs every 100 ms regardless so that
// unsynced namespace operations survive a power cut after a bounded time.
func (s *store) syncLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		var waiters []chan error
		select {
		case <-s.done:
			return
		case <-tick.C:
		case ch := <-s.syncReq:
			waiters = append(waiters, ch)
		}
		// Everyone who asked before this Sync starts is covered by it.
	drain:
		for {
			select {
			case ch := <-s.syncReq:
				waiters = append(waiters, ch)
			default:
				break drain
			}
		}
		err := s.db.Sync()
		if err != nil {
			s.log.Error("metadata sync failed", "err", err)
		}
		for _, ch := range waiters {
			ch <- err
		}
	}
}

// allocIno hands out a fresh inode number; called inside update.
func (tx *txn) allocIno() (uint64, error) {
	s := tx.s
	if s.mu.nextIno >= s.mu.inoLimit {
		s.mu.inoLimit += inoBatch
		// Persist the new limit in this same transaction: if it does not
		// commit, nothing allocated from it was used either.
		if err := tx.putU64(keyInoLimit, s.mu.inoLimit); err != nil {
			return 0, err
		}
	}
	ino := s.mu.nextIno
	s.mu.nextIno++
	tx.inodeDelta++
	return ino, nil
}

func (tx *txn) getU64(key []byte) (uint64, error) {
	item, err := tx.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var v uint64
	err = item.Value(func(b []byte) error {
		if len(b) != 8 {
			return fmt.Errorf("key %q: bad value", key)
		}
		v = binary.BigEndian.Uint64(b)
		return nil
	})
	return v, err
}

func (tx *txn) putU64(key []byte, v uint64) error {
	return tx.Set(key, binary.BigEndian.AppendUint64(nil, v))
}
