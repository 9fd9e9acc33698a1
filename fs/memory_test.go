package fs_test

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
	"golang.org/x/sys/unix"
)

// TestListingMemoryBounded lists a directory far larger than what an
// open directory keeps, through the mount: the mount holds at most three
// pages of entries at any time, every name comes exactly once, and a
// seekdir back to an offset whose page was dropped long ago goes on
// from exactly that offset — or, once names were removed in that page,
// from no later than it (nothing skipped). CAIRN_LISTING=1000000 lists
// a directory of the size (12000 entries by default).
func TestListingMemoryBounded(t *testing.T) {
	const maxKept = 3 * 1024
	n := modelEnvInt(t, "CAIRN_LISTING", 12000)
	if n < 2*maxKept {
		t.Fatalf("CAIRN_LISTING=%d: want at least %d, more than a listing keeps", n, 2*maxKept)
	}
	c := testcluster.Start(t, testcluster.Options{Replicas: 1, Chunkservers: 1})
	ctx := context.Background()
	dir, err := c.Client.Make(ctx, &wire.MakeReq{Parent: 1, Name: "big", Mode: syscall.S_IFDIR | 0o755})
	if err != nil {
		t.Fatal(err)
	}
	var names []string // in the listing's (byte) order
	for i := range n {
		name := fmt.Sprintf("e%08d", i)
		if _, err := c.Client.Make(ctx, &wire.MakeReq{Parent: dir.Ino, Name: name, Mode: syscall.S_IFREG | 0o644}); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	path := c.Path("big")
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	var got []string
	var early int64 // a telldir offset a few hundred names in
	peak := 0
	for {
		batch := getdentsNames(t, fd, buf)
		if batch == nil {
			break
		}
		got = append(got, batch...)
		if early == 0 && len(got) >= 300 {
			if early, err = unix.Seek(fd, 0, 1); err != nil {
				t.Fatal(err)
			}
		}
		peak = max(peak, c.Mount.Held().ListedEntries)
	}
	bigDirSame(t, "listing", got, names)
	if peak > maxKept || peak == 0 {
		t.Fatalf("an open directory kept up to %d entries while listing %d; want at most %d", peak, n, maxKept)
	}
	t.Logf("listed %d entries keeping at most %d in memory", n, peak)

	// Which names came before the telldir offset.
	var before int
	if _, err := unix.Seek(fd, 0, 0); err != nil { // rewinddir
		t.Fatal(err)
	}
	for before = 0; ; {
		batch := getdentsNames(t, fd, buf)
		before += len(batch)
		pos, _ := unix.Seek(fd, 0, 1)
		if pos == early {
			break
		}
		if batch == nil || before > n {
			t.Fatalf("rewinddir and reading again never reached offset %d", early)
		}
	}
	readAll := func() []string {
		var rest []string
		for batch := getdentsNames(t, fd, buf); batch != nil; batch = getdentsNames(t, fd, buf) {
			rest = append(rest, batch...)
		}
		return rest
	}
	// Read to the end, so the page of the offset is long dropped, and seek back.
	readAll()
	if _, err := unix.Seek(fd, early, 0); err != nil {
		t.Fatal(err)
	}
	bigDirSame(t, "listing after seekdir to a dropped page", readAll(), names[before:])

	// Remove names on both sides of the offset in its page and seek back
	// again: no name still there after the offset may be missing.
	removed := map[string]bool{}
	for _, i := range []int{before - 5, before - 1, before + 3} {
		if err := unix.Unlink(filepath.Join(path, names[i])); err != nil {
			t.Fatal(err)
		}
		removed[names[i]] = true
	}
	if _, err := unix.Seek(fd, early, 0); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, name := range readAll() {
		seen[name]++
		if seen[name] > 1 || removed[name] {
			t.Fatalf("after removals, seekdir listed %q %d times (removed: %v)", name, seen[name], removed[name])
		}
	}
	for _, name := range names[before:] {
		if !removed[name] && seen[name] != 1 {
			t.Fatalf("after removals, seekdir to a dropped page skipped %q", name)
		}
	}
	if peak := c.Mount.Held().ListedEntries; peak > maxKept {
		t.Fatalf("after seeking, the directory keeps %d entries; want at most %d", peak, maxKept)
	}
}
