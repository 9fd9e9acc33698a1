package metaserver

import (
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/cluster"
)

// queuedDeletes lists the blocks the scheduler was asked to delete.
func queuedDeletes(sc *scheduler) map[block.ID]bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	out := map[block.ID]bool{}
	for _, t := range sc.mu.queue {
		if t.delete {
			for _, id := range t.ids {
				out[id] = true
			}
		}
	}
	return out
}

// TestGCWaitsForTheLatestZero: a block that reached zero references,
// was referenced again and reached zero once more is deleted only after
// the grace period of its last zero; a block referenced again is not
// deleted at all; a block whose only zero is past its grace is.
func TestGCWaitsForTheLatestZero(t *testing.T) {
	const grace = time.Minute
	st := newStore(t)
	s := &Server{cfg: Config{GCGrace: grace, TasksPerNode: 1}, store: st}
	s.sched = newScheduler(s)
	m := cluster.Map{Nodes: []cluster.Node{{ID: "n1", Addr: "127.0.0.1:1", State: cluster.Up}}}
	twice, again, gone := block.Sum([]byte("twice")), block.Sum([]byte("again")), block.Sum([]byte("gone"))
	old := time.Now().Add(-2 * grace).UnixNano()
	err := st.update(func(tx *txn) error {
		for _, k := range [][]byte{garbageKey(old, twice), garbageKey(time.Now().UnixNano(), twice), garbageKey(old, again), garbageKey(old, gone)} {
			if err := tx.Set(k, nil); err != nil {
				return err
			}
		}
		return tx.addRef(again, 5, 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.collectGarbage(m); err != nil {
		t.Fatal(err)
	}
	del := queuedDeletes(s.sched)
	if !del[gone] || del[twice] || del[again] || len(del) != 1 {
		t.Fatalf("deleted gone=%v twice=%v again=%v (%d blocks); want only gone", del[gone], del[twice], del[again], len(del))
	}
}
