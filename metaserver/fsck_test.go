package metaserver_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
)

func fsck(t *testing.T, c *testcluster.Cluster) *wire.FsckResp { return fsckVerify(t, c, false) }

func fsckVerify(t *testing.T, c *testcluster.Cluster, verify bool) *wire.FsckResp {
	t.Helper()
	return c.Fsck(t, verify)
}

// TestFsck: a namespace built with every kind of operation checks clean;
// then blocks lost on every chunkserver, or on one, are reported.
func TestFsck(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{ReconcileEvery: time.Hour, ScrubEvery: time.Hour})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(c.Path("d/e/f"), 0o755))
	a := randomBytes(block.MaxSize + 100)
	writeFile(t, c.Path("d/a"), a)
	writeFile(t, c.Path("d/e/shared"), a) // dedup
	must(os.Link(c.Path("d/a"), c.Path("d/e/f/hard")))
	must(os.Symlink("../a", c.Path("d/e/sym")))
	b := randomBytes(300000)
	writeFile(t, c.Path("b"), b)
	must(os.Truncate(c.Path("b"), 1000))
	must(os.Rename(c.Path("d/e/f"), c.Path("g")))
	open, err := os.Open(c.Path("d/a"))
	must(err)
	defer open.Close()
	must(os.Remove(c.Path("d/e/shared")))
	writeFile(t, c.Path("gone"), randomBytes(5000))
	must(os.Remove(c.Path("gone")))

	r := fsck(t, c)
	t.Logf("fsck: %d inodes, %d dirs, %d files, %d extents, %d blocks, %d copies; problems %v; notes %v",
		r.Inodes, r.Dirs, r.Files, r.Extents, r.Blocks, r.Copies, r.Problems, r.Notes)
	if r.ProblemCount != 0 || r.Dirs != 4 || r.Files != 2 || r.Blocks != 3 || r.Copies != 9 {
		t.Fatalf("fsck of a clean namespace: %+v", r)
	}

	// --verify finds a rotten copy that listings cannot see.
	rotten := blockIDs(a)[0]
	flip(t, blockFile(c, holder(t, c, rotten), rotten))
	if r := fsck(t, c); r.ProblemCount != 0 {
		t.Fatalf("fsck without verify: %v", r.Problems)
	}
	r = fsckVerify(t, c, true)
	if got := strings.Join(r.Problems, "\n"); r.ProblemCount != 2 || !strings.Contains(got, rotten.Short()+" on chunkserver") ||
		!strings.Contains(got, rotten.Short()+" has 2 of 3 copies") {
		t.Fatalf("fsck --verify with a rotten copy: %v", r.Problems)
	}
	waitFor(t, 10*time.Second, "the rotten copy found by fsck is replaced", allCopies(c, []block.ID{rotten}, 3))
	if r := fsckVerify(t, c, true); r.ProblemCount != 0 {
		t.Fatalf("fsck --verify after the repair: %v", r.Problems)
	}

	lost, short := blockIDs(a)[1], block.Sum(b)
	for i := range c.Chunks {
		must(os.Remove(blockFile(c, i, lost)))
	}
	must(os.Remove(blockFile(c, holder(t, c, short), short)))
	r = fsck(t, c)
	got := strings.Join(r.Problems, "\n")
	if r.ProblemCount != 2 || !strings.Contains(got, lost.Short()+" has no copy") || !strings.Contains(got, short.Short()+" has 2 of 3 copies") {
		t.Fatalf("fsck after losing blocks: %d problems:\n%s", r.ProblemCount, got)
	}
}
