package metaserver_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/placement"
	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
)

// flip corrupts a stored copy in place, as bit rot would.
func flip(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int{0, len(b) / 2, len(b) - 1} {
		b[off] ^= 0x5a
	}
	fi, _ := os.Stat(path)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(path, fi.ModTime(), fi.ModTime())
}

// holder returns a chunkserver index that holds id.
func holder(t *testing.T, c *testcluster.Cluster, id block.ID) int {
	t.Helper()
	for i := range c.Chunks {
		if _, err := os.Stat(blockFile(c, i, id)); err == nil {
			return i
		}
	}
	t.Fatalf("no chunkserver holds %s", id.Short())
	return -1
}

// TestReadRepairsRottenCopy: a read that meets a rotten copy returns the
// right bytes from another replica, and the client's report gets the
// rotten copy replaced.
func TestReadRepairsRottenCopy(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{NoMount: true, ReconcileEvery: time.Hour, ScrubEvery: time.Hour})
	// Reads go to a block's first-ranked replica first: rot that one.
	files := map[string][]byte{"f": randomBytes(3 * block.MaxSize / 2)}
	writeAPI(t, c, "f", files["f"])
	var mr wire.MapResp
	if err := chunkRPC(t, c).Call(context.Background(), c.Meta.Addr(), wire.MMap, &wire.Empty{}, &mr); err != nil {
		t.Fatal(err)
	}
	index := map[string]int{}
	for i, cs := range c.Chunks {
		index[cs.ID()] = i
	}
	for _, id := range blockIDs(files["f"]) {
		first := index[placement.Replicas(id, &mr.Map)[0].ID]
		flip(t, blockFile(c, first, id))
		if copies(c, id) != 2 {
			t.Fatal("flip did not corrupt the copy")
		}
		readAll(t, c, files)
		took := waitFor(t, 10*time.Second, "the rotten copy is replaced", allCopies(c, []block.ID{id}, 3))
		t.Logf("rotten copy of %s replaced %v after the read", id.Short(), took.Round(time.Millisecond))
	}
	if st := tasks(t, c); st.CorruptFound == 0 {
		t.Fatalf("status shows no corrupt copy found")
	}
}

// TestScrubFindsRot: corruption that nobody reads is found by the scrub,
// quarantined, and the block re-replicated.
func TestScrubFindsRot(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{NoMount: true, ReconcileEvery: 200 * time.Millisecond, ScrubEvery: 300 * time.Millisecond})
	data := randomBytes(2*block.MaxSize + 999)
	writeAPI(t, c, "g", data)
	ids := blockIDs(data)
	bad := holder(t, c, ids[1])
	flip(t, blockFile(c, bad, ids[1]))
	if copies(c, ids[1]) != 2 {
		t.Fatal("flip did not corrupt the copy")
	}
	took := waitFor(t, 20*time.Second, "the scrub finds and replaces the rotten copy", allCopies(c, ids, 3))
	t.Logf("scrub found and replaced the rotten copy in %v", took.Round(time.Millisecond))
	q, _ := os.ReadDir(c.ChunkDir(bad) + "/quarantine")
	if len(q) != 1 {
		t.Fatalf("quarantine holds %d files, want the 1 rotten copy", len(q))
	}
	waitFor(t, 10*time.Second, "status counts the corrupt copy", func() bool { return tasks(t, c).CorruptFound == 1 })
	readAll(t, c, map[string][]byte{"g": data})
}

// TestRepairTaskRetries: a replacement whose sources are unavailable at
// first is retried until it succeeds.
func TestRepairTaskRetries(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{NoMount: true, ReconcileEvery: time.Hour, ScrubEvery: time.Hour})
	data := randomBytes(100000)
	writeAPI(t, c, "f", data)
	id := block.Sum(data)
	// The start-up pass is over: only the reported repair runs below.
	waitFor(t, 10*time.Second, "the first reconcile pass", func() bool { return tasks(t, c).LastPass != 0 })
	flip(t, blockFile(c, 0, id))
	for i := 1; i < 3; i++ {
		if err := os.Rename(blockFile(c, i, id), blockFile(c, i, id)+".away"); err != nil {
			t.Fatal(err)
		}
	}
	rc := chunkRPC(t, c)
	if err := rc.Call(context.Background(), c.Meta.Addr(), wire.MReportBad, &wire.BadReplicaReq{ID: id, Addr: c.Chunks[0].Addr()}, &wire.Empty{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond) // the first attempts find no source
	for i := 1; i < 3; i++ {
		if err := os.Rename(blockFile(c, i, id)+".away", blockFile(c, i, id)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "the rotten copy is replaced on a retry", allCopies(c, []block.ID{id}, 3))
	st := tasks(t, c)
	for _, k := range st.Kinds {
		if k.Kind == "repair" && (k.Done != 1 || k.Failed != 0) {
			t.Fatalf("repair tasks: %+v, want 1 done after retries, 0 failed", k)
		}
	}
}
