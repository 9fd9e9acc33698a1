package metaserver_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/client"
	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/metaserver"
)

// readAll reads every file in files through a new client with a tiny
// cache, so that every block comes from a chunkserver, and compares.
func readAll(t *testing.T, c *testcluster.Cluster, files map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	cl, err := client.New(ctx, client.Config{Meta: c.Meta.Addr(), CA: c.CA, CacheBytes: 1, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for name, want := range files {
		attr, err := cl.Lookup(ctx, metaserver.RootIno, name)
		if err != nil {
			t.Fatalf("lookup %s: %v", name, err)
		}
		f := cl.Open(attr.Ino)
		got := make([]byte, len(want)+1)
		n, err := f.Read(ctx, 0, got)
		f.Release(ctx)
		if err != nil || !bytes.Equal(got[:n], want) {
			t.Fatalf("read %s through a fresh client: %d bytes, err %v; want %d bytes equal", name, n, err, len(want))
		}
	}
}

// copiesOn counts the good copies of id on the chunkservers in which.
func copiesOn(c *testcluster.Cluster, id block.ID, which []int) int {
	n := 0
	for _, i := range which {
		if b, err := os.ReadFile(blockFile(c, i, id)); err == nil && id.Verify(b) {
			n++
		}
	}
	return n
}

func fileBlocks(files map[string][]byte) []block.ID {
	var ids []block.ID
	for _, d := range files {
		ids = append(ids, blockIDs(d)...)
	}
	return ids
}

// TestChunkserverDies: with R=3 and 4 chunkservers, one stops. Reads
// succeed from the other replicas, writes land 3 copies on the live ones,
// and once it is marked down every block gets its third copy back on the
// survivors. When it returns, copies beyond each block's top 3 go.
func TestChunkserverDies(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{
		Chunkservers: 4, GCGrace: 2 * time.Second, ReconcileEvery: 200 * time.Millisecond,
		DownAfter: time.Second, Heartbeat: 200 * time.Millisecond,
	})
	files := map[string][]byte{}
	for i := range 8 {
		name := fmt.Sprintf("before-%d", i)
		files[name] = randomBytes(block.MaxSize/2 + i*300000)
		writeFile(t, c.Path(name), files[name])
	}
	ids := fileBlocks(files)
	wantCopies(t, c, "before the crash", ids, 3)
	var bytesOnVictim int64
	for _, id := range ids {
		if fi, err := os.Stat(blockFile(c, 0, id)); err == nil {
			bytesOnVictim += fi.Size()
		}
	}

	c.StopChunk(t, 0)
	died := time.Now()
	survivors := []int{1, 2, 3}
	// Writes while it is down (first still in the map as up, then down).
	for i := range 4 {
		if i == 2 {
			readAll(t, c, files)
			t.Logf("read %d files from the other replicas %v after the crash", len(files), time.Since(died).Round(time.Millisecond))
		}
		name := fmt.Sprintf("during-%d", i)
		files[name] = randomBytes(block.MaxSize + i*100000)
		start := time.Now()
		writeFile(t, c.Path(name), files[name])
		wantCopies(t, c, "written while a chunkserver is down", blockIDs(files[name]), 3)
		for _, id := range blockIDs(files[name]) {
			if n := copiesOn(c, id, survivors); n != 3 {
				t.Fatalf("block %s written while down has %d copies on the survivors", id.Short(), n)
			}
		}
		t.Logf("wrote %s (%d bytes) in %v", name, len(files[name]), time.Since(start).Round(time.Millisecond))
		time.Sleep(300 * time.Millisecond)
	}

	ids = fileBlocks(files)
	waitFor(t, 30*time.Second, "every block has 3 copies on the survivors", func() bool {
		for _, id := range ids {
			if copiesOn(c, id, survivors) != 3 {
				return false
			}
		}
		return true
	})
	t.Logf("repaired %.1f MiB that the dead chunkserver held in %v after the crash (down after 1s)",
		float64(bytesOnVictim)/(1<<20), time.Since(died).Round(time.Millisecond))
	waitFor(t, 5*time.Second, "status shows no under-replicated block", func() bool {
		st := tasks(t, c)
		return st.UnderReplicated == 0 && st.Blocks == uint64(len(ids)) && st.BytesMoved >= uint64(bytesOnVictim)
	})

	// It comes back: extra copies go once the top 3 hold each block.
	c.StartChunk(t, 0)
	waitFor(t, 30*time.Second, "each block has exactly 3 copies after the chunkserver returns", allCopies(c, ids, 3))
	time.Sleep(time.Second)
	wantCopies(t, c, "settled", ids, 3)
	readAll(t, c, files)
}

// TestRepairThroughput measures how long re-replicating a dead
// chunkserver's share takes. It runs only with CAIRN_REPAIR_MIB set to
// the MiB of files to write (e.g. 256).
func TestRepairThroughput(t *testing.T) {
	mib, _ := strconv.Atoi(os.Getenv("CAIRN_REPAIR_MIB"))
	if mib <= 0 {
		t.Skip("set CAIRN_REPAIR_MIB to run")
	}
	c := testcluster.Start(t, testcluster.Options{NoMount: true, Chunkservers: 4, GCGrace: time.Minute,
		ReconcileEvery: time.Second, DownAfter: time.Second, Heartbeat: 200 * time.Millisecond})
	files := map[string][]byte{}
	for i := 0; i*4 < mib; i++ {
		name := fmt.Sprintf("f%d", i)
		files[name] = randomBytes(4 << 20)
		writeAPI(t, c, name, files[name])
	}
	ids := fileBlocks(files)
	var held int64
	heldBlocks := 0
	for _, id := range ids {
		if fi, err := os.Stat(blockFile(c, 0, id)); err == nil {
			held += fi.Size()
			heldBlocks++
		}
	}
	c.StopChunk(t, 0)
	start := time.Now()
	took := waitFor(t, 10*time.Minute, "every block has 3 copies on the survivors", func() bool {
		for _, id := range ids {
			if copiesOn(c, id, []int{1, 2, 3}) != 3 {
				return false
			}
		}
		return true
	})
	st := tasks(t, c)
	t.Logf("repaired %.0f MiB (%d blocks) of %d MiB written in %v after the kill (1s of it waiting to mark the node down): %.1f MiB/s; scheduler: moved %d MiB in %v of copying",
		float64(held)/(1<<20), heldBlocks, mib, took.Round(time.Millisecond), float64(held)/(1<<20)/time.Since(start).Seconds(),
		st.BytesMoved>>20, time.Duration(st.MoveNanos).Round(time.Millisecond))
	readAll(t, c, files)
}
