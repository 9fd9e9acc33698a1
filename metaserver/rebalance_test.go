package metaserver_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/cluster"
	"github.com/cairn-fs/cairn/internal/placement"
	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
)

func clusterMap(t *testing.T, c *testcluster.Cluster) cluster.Map {
	t.Helper()
	var mr wire.MapResp
	if err := chunkRPC(t, c).Call(context.Background(), c.Meta.Addr(), wire.MMap, &wire.Empty{}, &mr); err != nil {
		t.Fatal(err)
	}
	return mr.Map
}

// onTargets reports whether every block is on exactly its top-3 nodes.
func onTargets(t *testing.T, c *testcluster.Cluster, m cluster.Map, ids []block.ID) bool {
	index := map[string]int{}
	for i, cs := range c.Chunks {
		index[cs.ID()] = i
	}
	for _, id := range ids {
		top := placement.Replicas(id, &m)[:3]
		if copies(c, id) != 3 {
			return false
		}
		for _, n := range top {
			if _, err := os.Stat(blockFile(c, index[n.ID], id)); err != nil {
				return false
			}
		}
	}
	return true
}

func smallFiles(t *testing.T, c *testcluster.Cluster, prefix string, n, size int) (ids []block.ID) {
	for i := range n {
		data := randomBytes(size)
		writeAPI(t, c, fmt.Sprintf("%s-%d", prefix, i), data)
		ids = append(ids, block.Sum(data))
	}
	return ids
}

// TestJoinMovesOnlyChangedBlocks: a chunkserver joins; the blocks whose
// top-3 now include it are copied to it (and dropped from the node that
// left their top 3), and no other block moves.
func TestJoinMovesOnlyChangedBlocks(t *testing.T) {
	const size = 64 << 10
	c := testcluster.Start(t, testcluster.Options{NoMount: true, GCGrace: time.Second, ReconcileEvery: 200 * time.Millisecond})
	ids := smallFiles(t, c, "f", 60, size)
	c.StartChunk(t, 3)
	after := clusterMap(t, c)
	if len(after.Up()) != 4 {
		t.Fatalf("map after the join has %d up nodes", len(after.Up()))
	}
	joined := c.Chunks[3].ID()
	changed := 0
	for _, id := range ids {
		for _, n := range placement.Replicas(id, &after)[:3] {
			if n.ID == joined {
				changed++
			}
		}
	}
	took := waitFor(t, 20*time.Second, "every block is on its new top 3", func() bool { return onTargets(t, c, after, ids) })
	// The counters are updated when a task's reply arrives, a moment
	// after its effect is visible on the chunkservers.
	var st *wire.TasksResp
	waitFor(t, 5*time.Second, "the status counts every move and reclaim", func() bool {
		st = tasks(t, c)
		return st.BytesMoved >= uint64(changed*size) && st.BytesReclaimed >= uint64(changed*size)
	})
	t.Logf("join: %d of %d blocks moved to the new node in %v; status: moved %d bytes, reclaimed %d", changed, len(ids), took.Round(time.Millisecond), st.BytesMoved, st.BytesReclaimed)
	if changed == 0 || changed == len(ids) {
		t.Fatalf("%d of %d blocks changed top 3: the test needs some but not all", changed, len(ids))
	}
	if st.BytesMoved != uint64(changed*size) {
		t.Fatalf("moved %d bytes, want exactly the %d blocks whose top 3 changed (%d bytes)", st.BytesMoved, changed, changed*size)
	}
	if st.BytesReclaimed != uint64(changed*size) {
		t.Fatalf("reclaimed %d bytes, want the %d extra copies (%d bytes)", st.BytesReclaimed, changed, changed*size)
	}
}

// TestWeightsHonoured: a chunkserver with 4 times the weight holds more
// of the blocks than the others, as rendezvous hashing promises.
func TestWeightsHonoured(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{NoMount: true, Chunkservers: 5, Weights: []uint64{1, 1, 1, 1, 4},
		ReconcileEvery: time.Hour})
	smallFiles(t, c, "f", 100, 4096)
	count := make([]int, 5)
	for i := range c.Chunks {
		count[i] = len(storedBlocks(t, c, i))
	}
	t.Logf("blocks per chunkserver (weights 1,1,1,1,4): %v", count)
	for i := range 4 {
		if float64(count[4]) < 1.2*float64(count[i]) {
			t.Fatalf("heavy node holds %d blocks, light node %d holds %d: weight not honoured", count[4], i, count[i])
		}
	}
}

// TestDrainMovesEverythingOff: a drained chunkserver ends up empty, every
// block keeps 3 copies, and new writes avoid it.
func TestDrainMovesEverythingOff(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{NoMount: true, Chunkservers: 4, GCGrace: time.Second, ReconcileEvery: 200 * time.Millisecond})
	ids := smallFiles(t, c, "before", 30, 32<<10)
	if err := chunkRPC(t, c).Call(context.Background(), c.Meta.Addr(), wire.MDrain, &wire.DrainReq{Node: c.Chunks[0].Addr()}, &wire.Empty{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second) // clients refresh their map every 2s
	more := smallFiles(t, c, "after", 5, 1000)
	for _, id := range more {
		if _, err := os.Stat(blockFile(c, 0, id)); err == nil {
			t.Fatalf("a block written after the drain started went to the draining node")
		}
	}
	ids = append(ids, more...)
	waitFor(t, 20*time.Second, "the drained node is empty and every block has 3 copies elsewhere", func() bool {
		return len(storedBlocks(t, c, 0)) == 0 && allCopies(c, ids, 3)()
	})
	m := clusterMap(t, c)
	for _, n := range m.Nodes {
		if n.ID == c.Chunks[0].ID() && n.State != cluster.Draining {
			t.Fatalf("drained node is %v in the map", n.State)
		}
	}
}
