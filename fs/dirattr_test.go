package fs_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
)

// TestDirAttrsFromOwnChanges: after this mount's own creates, links,
// renames and removals, the directory's attributes it shows (answered
// from the metaserver's reply to the change) are the new ones.
func TestDirAttrsFromOwnChanges(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	d, e := c.Path("d"), c.Path("e")
	for _, dir := range []string{d, e} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	nlink := func(dir string, want uint64) syscall.Stat_t {
		t.Helper()
		var st syscall.Stat_t
		if err := syscall.Stat(dir, &st); err != nil {
			t.Fatal(err)
		}
		if st.Nlink != want {
			t.Fatalf("%s: nlink %d, want %d", dir, st.Nlink, want)
		}
		return st
	}
	before := nlink(d, 2)
	time.Sleep(10 * time.Millisecond)
	if err := os.Mkdir(filepath.Join(d, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if after := nlink(d, 3); after.Mtim == before.Mtim {
		t.Fatalf("mtime of %s unchanged by mkdir in it", d)
	}
	if err := os.WriteFile(filepath.Join(d, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(d, "f"), filepath.Join(e, "g")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(d, "sub"), filepath.Join(e, "sub")); err != nil {
		t.Fatal(err)
	}
	nlink(d, 2)
	nlink(e, 3)
	if err := os.Remove(filepath.Join(e, "sub")); err != nil {
		t.Fatal(err)
	}
	nlink(e, 2)
}

// TestDirAttrsExpire: attributes kept from this mount's own change are
// not shown once the attribute timeout has passed, so a change another
// mount made meanwhile (here a chmod, which permission checks depend on)
// is seen then.
func TestDirAttrsExpire(t *testing.T) {
	const timeout = 300 * time.Millisecond
	c := testcluster.Start(t, testcluster.Options{AttrTimeout: timeout})
	_, second := c.AddMount(t)
	d := c.Path("d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	// fstat of an open directory asks for its attributes without a
	// lookup, which would bring fresh ones.
	dir, err := os.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	// The create makes the kernel drop d's attributes; this mount keeps
	// the ones the metaserver answered the create with.
	if err := syscall.Mknod(filepath.Join(d, "f"), syscall.S_IFREG|0o644, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(second, "d"), 0o700); err != nil {
		t.Fatal(err)
	}
	time.Sleep(timeout + 200*time.Millisecond)
	st, err := dir.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Fatalf("mode of %s is %v after the attribute timeout, want 0700 set by the other mount", d, st.Mode().Perm())
	}
}

// TestListingBringsDirAttrs: a listing brings the directory's attributes
// back with it, with the atime it may have moved (relatime), so the stat
// that follows (the kernel forgets the atime after every listing) shows
// them without asking the metaserver.
func TestListingBringsDirAttrs(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	d := mkdirWithEmptyFiles(t, c, "d", "a", "b")
	stat := func() syscall.Stat_t {
		t.Helper()
		var st syscall.Stat_t
		if err := syscall.Stat(d, &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	list := func() {
		t.Helper()
		if _, err := os.ReadDir(d); err != nil {
			t.Fatal(err)
		}
	}
	before := stat()
	getattrs := c.Client.MetaCalls(wire.MGetAttr)
	time.Sleep(10 * time.Millisecond)
	list()
	after := stat()
	if after.Atim == before.Atim {
		t.Fatalf("atime of %s did not move with the first listing after its changes", d)
	}
	list()
	if again := stat(); again.Atim != after.Atim {
		t.Fatalf("atime of %s moved with a second listing: relatime", d)
	}
	if n := c.Client.MetaCalls(wire.MGetAttr) - getattrs; n != 0 {
		t.Fatalf("listing and stat of %s twice asked the metaserver for its attributes %d times, want 0", d, n)
	}
}

// mkdirWithEmptyFiles makes directory dir (relative to the mount)
// holding empty files of the names given, waits until the mount has
// released each, and returns the directory's path.
func mkdirWithEmptyFiles(t *testing.T, c *testcluster.Cluster, dir string, names ...string) string {
	t.Helper()
	d := c.Path(dir)
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(d, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		waitReleased(t, c, dir+"/"+name)
	}
	return d
}
