package metaserver_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/testcluster"
)

// tmpfsChunks prepares a cluster directory whose chunkservers each keep
// their blocks on a tmpfs of the given size (0: the ordinary disk).
func tmpfsChunks(t *testing.T, sizes ...int64) string {
	t.Helper()
	dir := t.TempDir()
	for i, size := range sizes {
		if size == 0 {
			continue
		}
		d := filepath.Join(dir, fmt.Sprintf("chunk%d", i+1))
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount("tmpfs", d, "tmpfs", 0, "size="+itoa(size)); err != nil {
			t.Fatalf("mount tmpfs on %s: %v", d, err)
		}
		t.Cleanup(func() {
			if err := syscall.Unmount(d, syscall.MNT_DETACH); err != nil {
				t.Errorf("unmount tmpfs %s: %v", d, err)
			}
		})
	}
	return dir
}

// writeUntilFull writes files of size bytes until one fails, returning
// what was written and the error.
func writeUntilFull(t *testing.T, c *testcluster.Cluster, prefix string, size, max int) (map[string][]byte, error) {
	t.Helper()
	files := map[string][]byte{}
	for i := range max {
		name := fmt.Sprintf("%s-%d", prefix, i)
		data := randomBytes(size)
		if err := os.WriteFile(c.Path(name), data, 0o644); err != nil {
			os.Remove(c.Path(name))
			return files, err
		}
		files[name] = data
	}
	return files, nil
}

// TestDiskFull: one chunkserver's disk fills up and the writes go on to
// the next hosts in each block's ranking; then the whole cluster fills
// and the writer gets ENOSPC. Every file written before reads back whole.
func TestDiskFull(t *testing.T) {
	const mib = 1 << 20
	// chunk1 is small; the other three are big enough for a while.
	dir := tmpfsChunks(t, 6*mib, 40*mib, 40*mib, 40*mib)
	c := testcluster.Start(t, testcluster.Options{Dir: dir, Chunkservers: 4, GCGrace: time.Second, ReconcileEvery: 200 * time.Millisecond})

	files, err := writeUntilFull(t, c, "a", 1*mib+1000, 20) // 20 MiB: overflows chunk1 only
	if err != nil {
		t.Fatalf("a full chunkserver failed the write, instead of the next host taking it: %v", err)
	}
	if n := len(storedBlocks(t, c, 0)); n == 0 || n == len(files) {
		t.Fatalf("the small chunkserver holds %d of %d blocks; want it full, some but not all", n, len(files))
	}
	wantCopies(t, c, "written while a chunkserver is full", fileBlocks(files), 3)
	for name, data := range files {
		checkFile(t, c.Path(name), data)
	}

	more, err := writeUntilFull(t, c, "b", 1*mib+1000, 100)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("writing until the cluster is full: err %v, want ENOSPC", err)
	}
	t.Logf("cluster full after %d more files: %v", len(more), err)
	for name, data := range more {
		files[name] = data
	}
	readAll(t, c, files)
	wantCopies(t, c, "written before the cluster filled", fileBlocks(files), 3)
	// No half-written block files are left behind.
	for i := range c.Chunks {
		if tmp, _ := os.ReadDir(filepath.Join(c.ChunkDir(i), "tmp")); len(tmp) != 0 {
			t.Errorf("chunkserver %d left %d temporary files", i, len(tmp))
		}
	}
	// Deleting files gives the space back (after the grace period) and
	// writes succeed again.
	for name := range more {
		if err := os.Remove(c.Path(name)); err != nil {
			t.Fatal(err)
		}
		delete(files, name)
	}
	waitFor(t, 20*time.Second, "a write succeeds after files were deleted", func() bool {
		_, err := writeUntilFull(t, c, fmt.Sprintf("c%d", time.Now().UnixNano()), 1*mib, 1)
		return err == nil
	})
	readAll(t, c, files)
}
