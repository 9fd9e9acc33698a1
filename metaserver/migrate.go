package metaserver

import (
	"encoding/binary"
	"time"

	"github.com/cairn-fs/cairn/internal/wire"
	badger "github.com/dgraph-io/badger/v4"
)

// countBatch is how many inode records one transaction of countStored
// rewrites.
const countBatch = 1024

// countStored gives each inode record written before Attr.Stored existed
// the bytes its extents hold, batch by batch, then marks the namespace
// counted. Stopped halfway, it starts over at the next open; records
// already rewritten are skipped. It reads a batch and rewrites it in two
// transactions, which is safe only because it runs before the store
// serves anything.
func (s *store) countStored() error {
	var counted uint64
	if err := s.view(func(tx *txn) error {
		var err error
		counted, err = tx.getU64(keyStoredCounted)
		return err
	}); err != nil || counted == 1 {
		return err
	}
	from, total := uint64(0), 0
	logged := time.Now()
	for {
		batch, next, err := s.legacyInodes(from)
		if err != nil {
			return err
		}
		if len(batch) > 0 {
			if err := s.update(func(tx *txn) error {
				for _, n := range batch {
					if err := tx.putInode(n); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				return err
			}
			total += len(batch)
			if time.Since(logged) > 5*time.Second {
				s.log.Info("counting the bytes files store, for records an older cairn wrote", "inodes", total)
				logged = time.Now()
			}
		}
		if next == 0 {
			break
		}
		from = next
	}
	if total > 0 {
		s.log.Info("counted the bytes files store, for records an older cairn wrote", "inodes", total)
	}
	return s.update(func(tx *txn) error { return tx.putU64(keyStoredCounted, 1) })
}

// legacyInodes reads inode records from inode number from on and returns
// up to countBatch of those that lack Stored, with Stored counted from
// their extents, and the inode number to go on from (0 at the end).
func (s *store) legacyInodes(from uint64) (batch []*inode, next uint64, err error) {
	err = s.view(func(tx *txn) error {
		it := tx.NewIterator(badger.IteratorOptions{Prefix: []byte{tInode}})
		defer it.Close()
		for it.Seek(inodeKey(from)); it.Valid(); it.Next() {
			ino := binary.BigEndian.Uint64(it.Item().Key()[1:])
			if len(batch) == countBatch {
				next = ino
				return nil
			}
			n := &inode{}
			if err := it.Item().Value(func(b []byte) error { return wire.Unmarshal(b, n) }); err != nil {
				return err
			}
			if !n.legacyStored {
				continue
			}
			if n.isReg() {
				err := tx.extents(ino, 0, func(e wire.Extent) (bool, error) {
					n.Stored += uint64(e.Len)
					return true, nil
				})
				if err != nil {
					return err
				}
			}
			batch = append(batch, n)
		}
		return nil
	})
	return batch, next, err
}
