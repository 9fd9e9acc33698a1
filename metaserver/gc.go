package metaserver

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/cluster"
	badger "github.com/dgraph-io/badger/v4"
)

// Garbage collection. A block whose reference count reaches zero is
// queued in the G table with the time (layout.go, addRef). Once the grace
// period has passed, the collector removes its G key and — in the same
// transaction — checks that no R key has appeared since (deduplication
// can reference the block again); only then does it ask every live
// chunkserver to delete it. The chunkservers themselves keep any block
// written or re-put within the grace period (chunkserver.remove), so a
// writer that uploaded a block and is about to commit a reference to it
// never loses it, provided it commits within the grace period.
//
// Blocks uploaded but never committed (a client that crashed), and copies
// left on a chunkserver that was down while their block was collected,
// have no R key and no G key: the reconcile pass deletes those once they
// are older than the grace period.

// gcBatch bounds the G keys one transaction handles and the blocks one
// delete task names.
const gcBatch = 256

// collectGarbage deletes the blocks whose grace period is over.
func (s *Server) collectGarbage(m cluster.Map) error {
	cutoff := time.Now().Add(-s.cfg.GCGrace).UnixNano()
	for {
		var due []block.ID
		more := false
		err := s.store.update(func(tx *txn) error {
			var keys [][]byte
			// A block can reach zero, be referenced again and reach zero
			// once more: its later entry, still in its grace period,
			// keeps it.
			later := map[block.ID]bool{}
			it := tx.NewIterator(badger.IteratorOptions{Prefix: []byte{tGarbage}})
			for it.Rewind(); it.Valid(); it.Next() {
				key := it.Item().Key()
				if len(key) != 1+8+len(block.ID{}) {
					continue
				}
				switch {
				case int64(binary.BigEndian.Uint64(key[1:9])) > cutoff:
					later[block.ID(key[9:])] = true
				case len(keys) == gcBatch:
					more = true
				default:
					keys = append(keys, it.Item().KeyCopy(nil))
				}
			}
			it.Close()
			for _, key := range keys {
				id := block.ID(key[9:])
				if err := tx.Delete(key); err != nil {
					return err
				}
				if later[id] {
					continue
				}
				if _, err := tx.Get(refKey(id)); errors.Is(err, badger.ErrKeyNotFound) {
					due = append(due, id)
				} else if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		s.deleteEverywhere(m, due, kindGC)
		if !more {
			return nil
		}
	}
}

// deleteEverywhere queues the deletion of ids on every chunkserver that
// is not down; one that is down deletes them after it returns, as
// unreferenced blocks older than the grace period.
func (s *Server) deleteEverywhere(m cluster.Map, ids []block.ID, kind taskKind) {
	for len(ids) > 0 {
		n := min(len(ids), gcBatch)
		for _, node := range m.Nodes {
			if node.State != cluster.Down {
				s.sched.add(&task{kind: kind, node: node, ids: ids[:n], delete: true, minAge: s.cfg.GCGrace})
			}
		}
		ids = ids[n:]
	}
}
