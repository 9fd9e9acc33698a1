package metaserver_test

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/cairn-fs/cairn/metaserver"
)

const grace = time.Second

// TestGCReclaimsSpace deletes, overwrites and unlinks-while-open files and
// checks that their blocks leave the chunkservers' disks after the grace
// period and not before, that blocks still shared by another file (dedup)
// or held by an open file stay, and that df on the mount shows the space
// come back.
func TestGCReclaimsSpace(t *testing.T) {
	// Room for the checks within it on a loaded machine: the overwrite,
	// the removals and the count of the copies took up to 1.7 s here
	// beside other tests (3.7 s with -race).
	const grace = 5 * time.Second
	dir := tmpfs(t, 768<<20)
	c := testcluster.Start(t, testcluster.Options{Dir: dir, GCGrace: grace, ReconcileEvery: 200 * time.Millisecond})
	const size = 2*block.MaxSize + 12345

	shared := randomBytes(size) // in a and b: deduplicated
	unique := randomBytes(size)
	openData := randomBytes(size)
	oldData, newData := randomBytes(size), randomBytes(size)
	writeFile(t, c.Path("a"), shared)
	writeFile(t, c.Path("b"), shared)
	writeFile(t, c.Path("u"), unique)
	writeFile(t, c.Path("open"), openData)
	writeFile(t, c.Path("w"), oldData)
	for name, data := range map[string][]byte{"a": shared, "u": unique, "open": openData, "w": oldData} {
		wantCopies(t, c, "after writing "+name, blockIDs(data), 3)
	}
	time.Sleep(1500 * time.Millisecond) // heartbeats carry disk usage
	freeBefore := dfFree(t, c.MountDir)

	open, err := os.Open(c.Path("open"))
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	overwritten := time.Now()
	writeFile(t, c.Path("w"), newData) // O_TRUNC, then new blocks
	removed := time.Now()
	for _, name := range []string{"a", "u", "open"} {
		if err := os.Remove(c.Path(name)); err != nil {
			t.Fatal(err)
		}
	}

	// Never earlier than the grace period. Reading and hashing the
	// copies takes a while on a loaded machine: a look that ended after
	// the grace period proves nothing either way.
	time.Sleep(750 * time.Millisecond) // a few passes of the collector (every 200 ms)
	uniqueKept, oldKept := allCopies(c, blockIDs(unique), 3)(), allCopies(c, blockIDs(oldData), 3)()
	since := time.Since(overwritten)
	if since >= grace {
		t.Fatalf("the machine is too slow for this test: %v passed before the copies were counted", since)
	}
	t.Logf("copies counted %v after the overwrite (grace %v)", since.Round(time.Millisecond), grace)
	if !uniqueKept || !oldKept {
		t.Fatalf("within the grace period: all copies of the removed file kept %v, of the overwritten one %v", uniqueKept, oldKept)
	}

	waitFor(t, 15*time.Second, "blocks of the removed file are collected", allCopies(c, blockIDs(unique), 0))
	if took := time.Since(removed); took < grace {
		t.Fatalf("blocks collected %v after rm, before the %v grace period", took, grace)
	}
	waitFor(t, 5*time.Second, "blocks of the overwritten file are collected", allCopies(c, blockIDs(oldData), 0))
	wantCopies(t, c, "still shared with b", blockIDs(shared), 3)
	wantCopies(t, c, "open after unlink", blockIDs(openData), 3)
	wantCopies(t, c, "new content of w", blockIDs(newData), 3)
	checkFile(t, c.Path("b"), shared)
	checkFile(t, c.Path("w"), newData)

	// The open, unlinked file keeps its blocks until its last close.
	if since := time.Since(removed); since < grace {
		time.Sleep(grace - since)
	}
	time.Sleep(500 * time.Millisecond) // a pass or two more
	wantCopies(t, c, "open after unlink, later", blockIDs(openData), 3)
	got := make([]byte, size)
	if _, err := open.ReadAt(got, 0); err != nil || string(got) != string(openData) {
		t.Fatalf("reading the open unlinked file: %v", err)
	}
	open.Close()
	waitFor(t, 15*time.Second, "blocks of the closed unlinked file are collected", allCopies(c, blockIDs(openData), 0))

	if err := os.Remove(c.Path("b")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "blocks no file shares any more are collected", allCopies(c, blockIDs(shared), 0))

	// df shows it: 4 files of `size` bytes went (a/b shared one copy).
	var freeAfter uint64
	waitFor(t, 10*time.Second, "df shows the space back", func() bool {
		freeAfter = dfFree(t, c.MountDir)
		return freeAfter >= freeBefore+3*size
	})
	t.Logf("df free: %d MiB before, %d MiB after removing %d MiB of files", freeBefore>>20, freeAfter>>20, 4*size>>20)
	// A delete task is counted when its answer comes back, after the
	// chunkserver removed the files; df is no barrier (it showed enough
	// space back long before the last tasks answered).
	const want = 3 * 4 * size // the shared content, u, open and w's old content, 3 copies each
	for deadline := time.Now().Add(10 * time.Second); tasks(t, c).BytesReclaimed < want; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("status says %d bytes reclaimed, want at least %d", tasks(t, c).BytesReclaimed, want)
		}
	}
}

// TestGCKeepsReuploadedBlock: a block whose count reached zero is uploaded
// again by a new writer (deduplication) shortly before its grace period
// ends and committed after it: the collector must not delete it.
func TestGCKeepsReuploadedBlock(t *testing.T) {
	const grace = 2 * time.Second
	c := testcluster.Start(t, testcluster.Options{GCGrace: grace, ReconcileEvery: 200 * time.Millisecond})
	data := randomBytes(block.MaxSize)
	id := block.Sum(data)
	writeFile(t, c.Path("first"), data)
	if err := os.Remove(c.Path("first")); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	time.Sleep(grace * 3 / 4)

	ctx := context.Background()
	attr, err := c.Client.Make(ctx, &wire.MakeReq{Parent: metaserver.RootIno, Name: "second", Mode: syscall.S_IFREG | 0o644})
	if err != nil {
		t.Fatal(err)
	}
	f := c.Client.Open(attr.Ino)
	f.Write(0, data) // a full block: uploaded now, committed at Flush
	time.Sleep(time.Until(removed.Add(grace + grace/2)))
	if err := f.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Release(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * grace)
	wantCopies(t, c, "re-uploaded and committed after the grace period", []block.ID{id}, 3)
}

// TestGCSweepsUncommittedUploads: blocks a client uploaded but never
// committed (it crashed) are deleted once older than the grace period.
func TestGCSweepsUncommittedUploads(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{NoMount: true, GCGrace: grace, ReconcileEvery: 200 * time.Millisecond})
	rc := chunkRPC(t, c)
	data := randomBytes(100000)
	id := block.Sum(data)
	start := time.Now() // every copy is younger than this
	for _, cs := range c.Chunks {
		if err := rc.Call(context.Background(), cs.Addr(), wire.CPut, &wire.PutReq{ID: id, Data: data}, &wire.Empty{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "the uncommitted block is swept", allCopies(c, []block.ID{id}, 0))
	if since := time.Since(start); since < grace {
		t.Fatalf("swept %v after the upload, within the grace period", since)
	}
}

// TestGCSlowCommit: a writer whose blocks were uploaded long before its
// close (longer than the grace period) keeps them alive while they wait
// for the commit (the client no longer holds their bytes to upload them
// again): nothing it commits is missing.
func TestGCSlowCommit(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{NoMount: true, GCGrace: grace, ReconcileEvery: 200 * time.Millisecond,
		KeepUploadsAfter: 100 * time.Millisecond})
	ctx := context.Background()
	attr, err := c.Client.Make(ctx, &wire.MakeReq{Parent: metaserver.RootIno, Name: "slow", Mode: syscall.S_IFREG | 0o644})
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(2 * block.MaxSize)
	ids := blockIDs(data)
	f := c.Client.Open(attr.Ino)
	f.Write(0, data[:block.MaxSize]) // sealed and uploaded now
	waitFor(t, 5*time.Second, "the first block is uploaded", allCopies(c, ids[:1], 3))
	time.Sleep(3 * grace)
	wantCopies(t, c, "an upload waiting for its commit, after the grace period", ids[:1], 3)
	f.Write(block.MaxSize, data[block.MaxSize:])
	if err := f.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	f.Release(ctx)
	wantCopies(t, c, "committed after a slow write", ids, 3)
	time.Sleep(2 * grace)
	wantCopies(t, c, "committed after a slow write, later", ids, 3)
	readAll(t, c, map[string][]byte{"slow": data})
}

// TestGCReturningChunkserver: blocks collected while a chunkserver was
// down are deleted from it when it comes back.
func TestGCReturningChunkserver(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{NoMount: true, GCGrace: grace, ReconcileEvery: 200 * time.Millisecond,
		DownAfter: time.Second, Heartbeat: 200 * time.Millisecond})
	data := randomBytes(300000)
	id := block.Sum(data)
	writeAPI(t, c, "f", data)
	c.StopChunk(t, 0)
	if err := c.Client.Remove(context.Background(), metaserver.RootIno, "f", false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the live copies are collected", func() bool { return copiesOn(c, id, []int{1, 2}) == 0 })
	if copiesOn(c, id, []int{0}) != 1 {
		t.Fatal("the stopped chunkserver lost its copy while stopped")
	}
	c.StartChunk(t, 0)
	waitFor(t, 10*time.Second, "the returning chunkserver's copy is collected", allCopies(c, []block.ID{id}, 0))
}

// TestGCOrphansAgedAtTheSnapshot: a reconcile pass reads the references
// in one snapshot and then lists the chunkservers. A chunkserver that
// died but is not yet marked down holds the listings after its own for a
// handshake timeout (5s), so blocks uploaded and committed after the
// snapshot show up in them older than the grace period and referenced by
// nothing: they must not be deleted as orphans.
func TestGCOrphansAgedAtTheSnapshot(t *testing.T) {
	// A writer commits within the grace period of its upload, even on a
	// loaded machine; the listings come 5 s after the snapshot, later.
	const grace = 2 * time.Second
	c := testcluster.Start(t, testcluster.Options{Chunkservers: 4, NoMount: true, GCGrace: grace,
		ReconcileEvery: 200 * time.Millisecond, DownAfter: time.Minute})
	first := 0 // the chunkserver listed first: the map is sorted by ID
	for i, cs := range c.Chunks {
		if cs.ID() < c.Chunks[first].ID() {
			first = i
		}
	}
	c.StopChunk(t, first)
	var survivors []int
	for i := range c.Chunks {
		if i != first {
			survivors = append(survivors, i)
		}
	}
	files := map[string][]byte{}
	for start := time.Now(); time.Since(start) < 6*time.Second; {
		name := fmt.Sprintf("f%d", len(files))
		files[name] = randomBytes(100000)
		writeAPI(t, c, name, files[name])
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(grace + 6*time.Second) // passes whose listings came 5s after their snapshot
	ids, lost := fileBlocks(files), 0
	for _, id := range ids {
		if copiesOn(c, id, survivors) != 3 {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d blocks written while a dead chunkserver held up the listings lost copies", lost, len(ids))
	}
}
