package metaserver

import (
	"context"

	"github.com/cairn-fs/cairn/internal/wire"
	badger "github.com/dgraph-io/badger/v4"
)

// spaceUse is what the data takes at each step from files to disks, as
// the reconcile pass counts it for `cairn status`: what the files' extents
// hold, what their distinct blocks hold (the difference is deduplication),
// what one copy of each takes on a chunkserver's disk (the difference is
// compression), and what all copies take.
type spaceUse struct {
	files, blocks, stored, disk uint64
}

// addFiles adds up the bytes that every file's extents name.
func (u *spaceUse) addFiles(ctx context.Context, tx *txn) error {
	it := tx.NewIterator(badger.IteratorOptions{Prefix: []byte{tExtent}, PrefetchValues: true, PrefetchSize: 256})
	defer it.Close()
	for it.Rewind(); it.Valid() && ctx.Err() == nil; it.Next() {
		var rec extentRecord
		if err := it.Item().Value(func(b []byte) error { return wire.Unmarshal(b, &rec) }); err != nil {
			return err
		}
		u.files += uint64(rec.Len)
	}
	return ctx.Err()
}

// addBlock adds a referenced block (its R table item) and its copies.
func (u *spaceUse) addBlock(item *badger.Item, copies []copyAt) error {
	var r ref
	if err := item.Value(func(b []byte) error { return wire.Unmarshal(b, &r) }); err != nil {
		return err
	}
	u.blocks += uint64(r.Len)
	for i, c := range copies {
		if i == 0 {
			u.stored += uint64(c.size)
		}
		u.disk += uint64(c.size)
	}
	return nil
}
