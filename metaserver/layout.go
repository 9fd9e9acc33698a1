package metaserver

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/wire"
	badger "github.com/dgraph-io/badger/v4"
)

func errorsIsNotFound(err error) bool { return errors.Is(err, wire.ErrNotFound) }

func (tx *txn) putExtent(ino uint64, e wire.Extent) error {
	return tx.put(extentKey(ino, e.Off), &extentRecord{Len: e.Len, Block: e.Block, BlockOff: e.BlockOff, BlockLen: e.BlockLen})
}

// extents calls fn for every extent of ino that overlaps [from, ∞), in
// offset order, until fn returns false.
func (tx *txn) extents(ino, from uint64, fn func(e wire.Extent) (bool, error)) error {
	if from > 0 {
		e, ok, err := tx.extentBefore(ino, from)
		if err != nil {
			return err
		}
		if ok && e.End() > from {
			if more, err := fn(e); err != nil || !more {
				return err
			}
		}
	}
	prefix := extentPrefix(ino)
	it := tx.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	for it.Seek(extentKey(ino, from)); it.Valid(); it.Next() {
		e, err := extentOf(it.Item(), len(prefix))
		if err != nil {
			return err
		}
		more, err := fn(e)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// extentBefore returns ino's last extent that starts before off: the one
// extent (extents do not overlap) that may start before off and reach
// past it. It is looked up backwards, not by walking the extents of a
// block's length before off: Badger keeps every version of a rewritten
// extent until its memtable is flushed, and a walk visits them all
// (BenchmarkCommitRewrites: 1.23 ms a commit walking, 71 µs looking
// back, with values not prefetched either).
func (tx *txn) extentBefore(ino, off uint64) (wire.Extent, bool, error) {
	prefix := extentPrefix(ino)
	it := tx.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true})
	defer it.Close()
	if it.Seek(extentKey(ino, off-1)); !it.Valid() {
		return wire.Extent{}, false, nil
	}
	e, err := extentOf(it.Item(), len(prefix))
	return e, err == nil, err
}

// extentOf decodes the extent an E key item holds; prefixLen is the
// length of its inode's extent prefix.
func extentOf(item *badger.Item, prefixLen int) (wire.Extent, error) {
	var rec extentRecord
	if err := item.Value(func(b []byte) error { return wire.Unmarshal(b, &rec) }); err != nil {
		return wire.Extent{}, err
	}
	return wire.Extent{
		Off: binary.BigEndian.Uint64(item.Key()[prefixLen:]),
		Len: rec.Len, Block: rec.Block, BlockOff: rec.BlockOff, BlockLen: rec.BlockLen,
	}, nil
}

// punch removes [from, to) from n's layout: extents inside it go, those
// that straddle an edge are trimmed (and split in two if they straddle
// both), and block reference counts and n.Stored follow.
func (tx *txn) punch(n *inode, from, to uint64) error {
	ino := n.Ino
	var cut []wire.Extent
	err := tx.extents(ino, from, func(e wire.Extent) (bool, error) {
		if e.Off >= to {
			return false, nil
		}
		cut = append(cut, e)
		return true, nil
	})
	if err != nil {
		return err
	}
	var stored int64               // the change to n.Stored
	refs := make(map[block.ID]int) // one update per block, not per extent: a big file has many
	blockLen := make(map[block.ID]uint32)
	for _, e := range cut {
		if err := tx.Delete(extentKey(ino, e.Off)); err != nil {
			return err
		}
		refs[e.Block]--
		blockLen[e.Block] = e.BlockLen
		stored -= int64(e.Len)
		if e.Off < from { // keep the head
			head := e
			head.Len = uint32(from - e.Off)
			if err := tx.putExtent(ino, head); err != nil {
				return err
			}
			refs[e.Block]++
			stored += int64(head.Len)
		}
		if e.End() > to { // keep the tail
			tail := e
			tail.Off = to
			tail.BlockOff += uint32(to - e.Off)
			tail.Len = uint32(e.End() - to)
			if err := tx.putExtent(ino, tail); err != nil {
				return err
			}
			refs[e.Block]++
			stored += int64(tail.Len)
		}
	}
	for id, delta := range refs {
		if delta != 0 {
			if err := tx.addRef(id, blockLen[id], delta); err != nil {
				return err
			}
		}
	}
	return n.addStored(stored)
}

// addStored changes n.Stored by delta, which a correct count never takes
// below zero: a count gone wrong fails the operation (and fsck names it)
// rather than wrap around to an absurd st_blocks.
func (n *inode) addStored(delta int64) error {
	if delta < 0 && uint64(-delta) > n.Stored {
		return wire.Errorf(wire.CodeInternal, "inode %d stores %d bytes, and a change takes %d away", n.Ino, n.Stored, -delta)
	}
	n.Stored = uint64(int64(n.Stored) + delta)
	return nil
}

// addRef changes a block's reference count by delta. A block whose count
// reaches zero is queued as garbage, stamped with the time, so that the
// collector deletes it only after a grace period in which no in-flight
// write can still commit a reference to it.
func (tx *txn) addRef(id block.ID, blockLen uint32, delta int) error {
	var r ref
	if err := tx.get(refKey(id), &r); err != nil && !errorsIsNotFound(err) {
		return err
	}
	next := int64(r.Count) + int64(delta)
	if next < 0 || next > math.MaxInt64/2 {
		return wire.Errorf(wire.CodeInternal, "block %s reference count would become %d", id.Short(), next)
	}
	if next == 0 {
		if err := tx.Delete(refKey(id)); err != nil {
			return err
		}
		return tx.Set(garbageKey(tx.now, id), nil)
	}
	r.Count, r.Len = uint64(next), blockLen
	return tx.put(refKey(id), &r)
}

// layout returns a file's size and its extents in offset order.
func (s *store) layout(ino uint64) (resp wire.ExtentsResp, err error) {
	err = s.view(func(tx *txn) error {
		n, err := tx.getInode(ino)
		if err != nil {
			return err
		}
		resp.Size, resp.Attr = n.Size, n.Attr
		return tx.extents(ino, 0, func(e wire.Extent) (bool, error) {
			resp.Extents = append(resp.Extents, e)
			return true, nil
		})
	})
	return resp, err
}
