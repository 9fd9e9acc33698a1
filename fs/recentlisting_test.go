package fs_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
)

// TestRmListsEachDirOnce: rm -rf, which opens every directory twice in
// a row (to look, then to empty it), lists each from the metaserver once.
func TestRmListsEachDirOnce(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	const dirs = 20
	for i := range dirs {
		d := c.Path("tree", fmt.Sprint(i))
		if i > 0 {
			d = c.Path("tree", fmt.Sprint(i-1), fmt.Sprint(i)) // some depth too
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for j := range 5 {
			if err := os.WriteFile(filepath.Join(d, fmt.Sprint("f", j)), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	var n int
	filepath.WalkDir(c.Path("tree"), func(_ string, e os.DirEntry, _ error) error {
		if e.IsDir() {
			n++
		}
		return nil
	})
	before := c.Client.MetaCalls(wire.MReadDir)
	if out, err := exec.Command("rm", "-rf", c.Path("tree")).CombinedOutput(); err != nil {
		t.Fatalf("rm -rf: %v: %s", err, out)
	}
	if got := c.Client.MetaCalls(wire.MReadDir) - before; got != uint64(n) {
		t.Errorf("rm -rf of %d directories listed %d from the metaserver, want one each", n, got)
	}
	if _, err := os.Lstat(c.Path("tree")); !os.IsNotExist(err) {
		t.Fatalf("tree after rm -rf: %v", err)
	}
}

// TestRecentListingAnswersOnce: a listing kept for the next one answers
// it only once, only right after, and never after a change on this mount;
// another mount's change shows once listingReuse has passed.
func TestRecentListingAnswersOnce(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	d := mkdirWithEmptyFiles(t, c, "d", "a", "b")
	list := func(dir string, wantCalls uint64, want ...string) {
		t.Helper()
		before := c.Client.MetaCalls(wire.MReadDir)
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if !slices.Equal(names, want) {
			t.Errorf("listing of %s: %q, want %q", dir, names, want)
		}
		if got := c.Client.MetaCalls(wire.MReadDir) - before; got != wantCalls {
			t.Errorf("listing of %s (%q) took %d metaserver listings, want %d", dir, want, got, wantCalls)
		}
	}
	list(d, 1, "a", "b")
	list(d, 0, "a", "b") // the one just before
	list(d, 1, "a", "b") // once only

	// A change on this mount in between, even elsewhere: fetched again.
	if err := os.WriteFile(filepath.Join(d, "c"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	list(d, 1, "a", "b", "c")
	if err := os.WriteFile(c.Path("elsewhere"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	list(d, 1, "a", "b", "c")
	if err := os.Chmod(filepath.Join(d, "a"), 0o600); err != nil {
		t.Fatal(err)
	}
	list(d, 1, "a", "b", "c")

	// Another directory's listing in between: this one is fetched again.
	if err := os.Mkdir(c.Path("e"), 0o755); err != nil {
		t.Fatal(err)
	}
	list(d, 1, "a", "b", "c")
	list(c.Path("e"), 1)
	list(d, 1, "a", "b", "c")

	// Too late: fetched again, and another mount's change shows.
	_, other := c.AddMount(t)
	if err := os.WriteFile(filepath.Join(other, "d", "z"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // listingReuse
	list(d, 1, "a", "b", "c", "z")
}
