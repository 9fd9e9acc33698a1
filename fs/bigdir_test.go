package fs_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"golang.org/x/sys/unix"
)

// TestBigDir fills one directory with CAIRN_BIGDIR entries (20000 by
// default, to keep CI fast; CAIRN_BIGDIR=100000 for the size),
// lists it, and empties it while listing, as rm -rf does: every name must
// be listed exactly once, and a readdir offset kept across removals must
// still be valid. It runs on the local disk first, to show that what it
// expects is what Linux does.
func TestBigDir(t *testing.T) {
	n := modelEnvInt(t, "CAIRN_BIGDIR", 20000)
	if n < 1000 {
		t.Fatalf("CAIRN_BIGDIR=%d: want at least 1000", n)
	}
	t.Run("local", func(t *testing.T) { bigDir(t, t.TempDir(), n) })
	c := testcluster.Start(t, testcluster.Options{})
	t.Run("cairn", func(t *testing.T) { bigDir(t, c.Path(), n) })
	var ru syscall.Rusage
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		t.Logf("peak RSS of the test process (cluster and mount included): %d MiB; Go heap now %d MiB, from the OS %d MiB",
			ru.Maxrss>>10, ms.HeapInuse>>20, ms.Sys>>20)
	}
}

func bigDir(t *testing.T, root string, n int) {
	dir := filepath.Join(root, "big")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	names := bigDirNames(n)

	start := time.Now()
	bigDirCreate(t, dir, names)
	rate(t, "create", n, start)

	start = time.Now()
	got := bigDirList(t, dir, 1<<16, nil)
	rate(t, "list", n, start)
	bigDirSame(t, "listing", got, names)

	// A seekdir to an offset taken before removals: the entries after it
	// that were not removed come back, each once, and none before it.
	bigDirSeekAfterRemovals(t, dir, names)

	// Unlink every entry as soon as a small getdents batch returns it.
	start = time.Now()
	got = bigDirList(t, dir, 4096, func(name string) {
		if err := unix.Unlink(filepath.Join(dir, name)); err != nil {
			t.Fatalf("unlink %s while listing: %v", name, err)
		}
	})
	rate(t, "unlink while listing", n-n/10, start)
	bigDirSame(t, "listing while unlinking", got, names[n/10:]) // the seek test removed the first tenth
	if left := bigDirList(t, dir, 1<<16, nil); len(left) != 0 {
		t.Fatalf("%d entries left after unlinking all that were listed, e.g. %q", len(left), left[0])
	}
	if err := unix.Rmdir(dir); err != nil {
		t.Fatalf("rmdir of the emptied directory: %v", err)
	}

	// rm -rf of a big tree: it reads, unlinks and rmdirs as it goes, and
	// fails with ENOTEMPTY if readdir skipped a name.
	tree := filepath.Join(root, "tree")
	sub := filepath.Join(tree, "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	bigDirCreate(t, tree, names[:n/2])
	bigDirCreate(t, sub, names[n/2:])
	start = time.Now()
	if out, err := exec.Command("rm", "-rf", tree).CombinedOutput(); err != nil {
		t.Fatalf("rm -rf of a tree of %d entries: %v\n%s", n, err, out)
	}
	rate(t, "rm -rf", n, start)
	if _, err := os.Lstat(tree); !os.IsNotExist(err) {
		t.Fatalf("after rm -rf: %v", err)
	}
}

func rate(t *testing.T, what string, n int, start time.Time) {
	d := time.Since(start)
	t.Logf("%s: %d entries in %v (%.0f/s)", what, n, d.Round(time.Millisecond), float64(n)/d.Seconds())
}

// bigDirNames are n distinct names of varied length, in no particular order.
func bigDirNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%x-%s", uint32(i)*2654435761, "entry"[:i%6])
	}
	return names
}

func bigDirCreate(t *testing.T, dir string, names []string) {
	for _, name := range names {
		fd, err := unix.Open(filepath.Join(dir, name), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		unix.Close(fd)
	}
}

// bigDirList lists dir with getdents64 into a buffer of bufSize bytes,
// calling each (if set) on every name of a batch after the batch is read.
func bigDirList(t *testing.T, dir string, bufSize int, each func(string)) []string {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var all []string
	buf := make([]byte, bufSize)
	for {
		batch := getdentsNames(t, fd, buf)
		if batch == nil {
			return all
		}
		all = append(all, batch...)
		if each != nil {
			for _, name := range batch {
				each(name)
			}
		}
	}
}

// getdentsNames reads one getdents64 batch (nil at the end), without "."
// and "..".
func getdentsNames(t *testing.T, fd int, buf []byte) []string {
	n, err := unix.Getdents(fd, buf)
	if err != nil {
		t.Fatalf("getdents: %v", err)
	}
	if n == 0 {
		return nil
	}
	batch := []string{}
	for off := 0; off < n; {
		reclen := int(binary.LittleEndian.Uint16(buf[off+16:]))
		name := buf[off+19 : off+reclen]
		if i := slices.Index(name, 0); i >= 0 {
			name = name[:i]
		}
		off += reclen
		if s := string(name); s != "." && s != ".." {
			batch = append(batch, s)
		}
	}
	return batch
}

// bigDirSame checks that got holds every name of want exactly once.
func bigDirSame(t *testing.T, what string, got, want []string) {
	t.Helper()
	seen := make(map[string]int, len(got))
	for _, name := range got {
		seen[name]++
	}
	for _, name := range want {
		switch seen[name] {
		case 0:
			t.Fatalf("%s: %q missing (%d names listed, %d expected)", what, name, len(got), len(want))
		case 1:
		default:
			t.Fatalf("%s: %q listed %d times", what, name, seen[name])
		}
		delete(seen, name)
	}
	for name := range seen {
		t.Fatalf("%s: %q listed but never created", what, name)
	}
}

// bigDirSeekAfterRemovals reads part of a listing, remembers the offset
// (telldir), removes the first tenth of the names (some read already,
// some not), seeks back to the offset (seekdir) and reads on. Every name
// after the offset that is still there must come back exactly once, and
// no name before it. A removed name may still be listed (POSIX leaves it
// open), but at most once.
func bigDirSeekAfterRemovals(t *testing.T, dir string, names []string) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	var before []string
	for len(before) < len(names)/3 {
		before = append(before, getdentsNames(t, fd, buf)...)
	}
	pos, err := unix.Seek(fd, 0, 1) // telldir
	if err != nil {
		t.Fatal(err)
	}
	// Read on a little past the offset, as a program does before it
	// seeks back.
	getdentsNames(t, fd, buf)
	removed := map[string]bool{}
	for _, name := range names[:len(names)/10] {
		if err := unix.Unlink(filepath.Join(dir, name)); err != nil {
			t.Fatalf("unlink %s: %v", name, err)
		}
		removed[name] = true
	}
	if _, err := unix.Seek(fd, pos, 0); err != nil { // seekdir
		t.Fatal(err)
	}
	var after []string
	for batch := getdentsNames(t, fd, buf); batch != nil; batch = getdentsNames(t, fd, buf) {
		after = append(after, batch...)
	}
	read := map[string]bool{}
	for _, name := range before {
		read[name] = true
	}
	var want, got []string
	for _, name := range names {
		if !read[name] && !removed[name] {
			want = append(want, name)
		}
	}
	for _, name := range after {
		if read[name] {
			t.Fatalf("seekdir: %q came back after the offset it was read before", name)
		}
		if !removed[name] {
			got = append(got, name)
		}
	}
	bigDirSame(t, "listing after seekdir", got, want)
	slices.Sort(after)
	if len(slices.Compact(after)) != len(after) {
		t.Fatalf("seekdir: a removed name was listed twice")
	}
}

// TestLinkLimit makes hard links to one file until link(2) fails, on
// cairn and on the local disk: both stop at 65000 links with EMLINK. It
// takes a minute, so it runs only with CAIRN_BIGDIR of 65001 or more.
func TestLinkLimit(t *testing.T) {
	if modelEnvInt(t, "CAIRN_BIGDIR", 0) <= 65000 {
		t.Skip("CAIRN_BIGDIR=65001 or more runs it")
	}
	c := testcluster.Start(t, testcluster.Options{})
	for _, dir := range []string{t.TempDir(), c.Path("links")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(dir, "target")
		if err := os.WriteFile(target, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		var err error
		links := 1
		for ; links < 70000; links++ {
			if err = unix.Link(target, filepath.Join(dir, fmt.Sprint("l", links))); err != nil {
				break
			}
		}
		var st unix.Stat_t
		unix.Stat(target, &st)
		t.Logf("%s: link failed at %d links with %v; nlink %d", dir, links, err, st.Nlink)
		if err != unix.EMLINK || links != 65000 || st.Nlink != 65000 {
			t.Errorf("%s: link %d gave %v (nlink %d), want EMLINK at 65000", dir, links, err, st.Nlink)
		}
	}
}
