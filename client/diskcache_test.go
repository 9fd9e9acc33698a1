package client_test

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/testcluster"
)

// startDiskCached starts a cluster of one chunkserver whose mount keeps a
// disk cache of limit bytes (the default if zero) in cacheDir.
func startDiskCached(t *testing.T, cacheDir string, limit int64) *testcluster.Cluster {
	t.Helper()
	return testcluster.Start(t, testcluster.Options{Chunkservers: 1, Replicas: 1, CacheDir: cacheDir, CacheDiskBytes: limit})
}

// randomBytes returns n bytes that no other call returns, so that every
// block is new to the cluster.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return b
}

// cacheEntries lists the entry files in a disk cache directory, and the
// temporary files separately.
func cacheEntries(t *testing.T, dir string) (entries, tmps []string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), ".tmp-") {
			tmps = append(tmps, f)
		} else {
			entries = append(entries, f)
		}
	}
	return entries, tmps
}

// waitEntries waits until the disk cache in dir holds n entries.
func waitEntries(t *testing.T, dir string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, _ := cacheEntries(t, dir)
		if len(entries) == n {
			return entries
		}
		if time.Now().After(deadline) {
			t.Fatalf("disk cache holds %d entries, want %d", len(entries), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readBack reads path through the mount, first 4 KiB at a few offsets
// (the path of small reads: verified slices) and then whole, and checks
// both against want.
func readBack(t *testing.T, path string, want []byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, off := range []int64{5 << 20, 100 << 10, int64(len(want)) - 4096} {
		buf := make([]byte, 4096)
		if _, err := f.ReadAt(buf, off); err != nil {
			t.Fatalf("read 4 KiB at %d: %v", off, err)
		}
		if !bytes.Equal(buf, want[off:off+4096]) {
			t.Fatalf("4 KiB at %d differ from what was written", off)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what was written", path)
	}
}

// fileOfThreeBlocks writes a file of 10 MiB (blocks of 4, 4 and 2 MiB),
// restarts the cluster so that nothing of it is in memory, and reads it,
// which leaves its three blocks in the disk cache in cacheDir.
func fileOfThreeBlocks(t *testing.T, c *testcluster.Cluster, cacheDir string) []byte {
	t.Helper()
	content := randomBytes(10 << 20)
	if err := os.WriteFile(c.Path("f"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	c.Restart(t)
	readBack(t, c.Path("f"), content)
	waitEntries(t, cacheDir, 3)
	return content
}

// TestDiskCacheServesWithoutChunkservers: blocks read once are read from
// the disk cache, also by the next mount (which indexes it at start), so
// a restarted mount reads them with its chunkserver stopped.
func TestDiskCacheServesWithoutChunkservers(t *testing.T) {
	cacheDir := t.TempDir()
	c := startDiskCached(t, cacheDir, 0)
	content := fileOfThreeBlocks(t, c, cacheDir)
	leftover := filepath.Join(cacheDir, "00", ".tmp-crashed")
	if err := os.WriteFile(leftover, []byte("half an entry"), 0o600); err != nil {
		t.Fatal(err)
	}

	c.Restart(t)
	c.StopChunk(t, 0)
	readBack(t, c.Path("f"), content)
	if _, tmps := cacheEntries(t, cacheDir); len(tmps) > 0 {
		t.Errorf("temporary files left after a restart: %v", tmps)
	}
}

// TestDiskCacheDropsCorruptEntries: an entry that no longer matches its
// block's hash is never returned; the block is fetched from the
// chunkserver again and cached anew.
func TestDiskCacheDropsCorruptEntries(t *testing.T) {
	cacheDir := t.TempDir()
	c := startDiskCached(t, cacheDir, 0)
	content := fileOfThreeBlocks(t, c, cacheDir)
	c.Restart(t)

	// Flip the last byte of every block: the 4 KiB read at the end of the
	// first block and the whole read both cover one.
	corrupt := make(map[string][]byte)
	for _, e := range waitEntries(t, cacheDir, 3) {
		data, err := os.ReadFile(e)
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)-1] ^= 0xff
		if err := os.WriteFile(e, data, 0o600); err != nil {
			t.Fatal(err)
		}
		corrupt[e] = data
	}
	f, err := os.Open(c.Path("f"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if _, err := f.ReadAt(buf, 4<<20-4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !bytes.Equal(buf, content[4<<20-4096:4<<20]) {
		t.Fatal("a small read returned a corrupt disk cache entry's bytes")
	}
	readBack(t, c.Path("f"), content)

	// Each entry is written again, from the chunkserver's copy.
	deadline := time.Now().Add(10 * time.Second)
	for e, bad := range corrupt {
		for {
			data, err := os.ReadFile(e)
			if err == nil && !bytes.Equal(data, bad) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("corrupt entry %s not replaced (read error %v)", e, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	c.Restart(t)
	c.StopChunk(t, 0)
	readBack(t, c.Path("f"), content)
}

// entryBytes is what a disk cache entry of a 4 MiB block takes: the block
// and its outboard (16 KiB), in whole pages.
const entryBytes = 4<<20 + 16<<10

// TestDiskCacheLimit: the disk cache holds no more than its limit, and a
// restart with a smaller limit evicts down to it.
func TestDiskCacheLimit(t *testing.T) {
	cacheDir := t.TempDir()
	c := startDiskCached(t, cacheDir, 10<<20)
	content := randomBytes(24 << 20)
	if err := os.WriteFile(c.Path("f"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	c.Restart(t)
	readBack(t, c.Path("f"), content)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		entries, _ := cacheEntries(t, cacheDir)
		if len(entries)*entryBytes > 10<<20 {
			t.Fatalf("disk cache of 10 MiB holds %d entries of 4 MiB", len(entries))
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitEntries(t, cacheDir, 2)

	c.Stop()
	c = startDiskCached(t, cacheDir, 5<<20)
	waitEntries(t, cacheDir, 1)
}

// TestDiskCacheFullDisk: a cache directory on a full disk costs reads
// nothing: they are served, correctly, and no temporary file stays.
func TestDiskCacheFullDisk(t *testing.T) {
	cacheDir := t.TempDir()
	if err := syscall.Mount("tmpfs", cacheDir, "tmpfs", 0, "size=5m"); err != nil {
		t.Fatalf("mount a small tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(cacheDir, syscall.MNT_DETACH) })
	c := startDiskCached(t, cacheDir, 100<<20)
	content := randomBytes(10 << 20)
	if err := os.WriteFile(c.Path("f"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	c.Restart(t)
	readBack(t, c.Path("f"), content)
	c.Restart(t)
	readBack(t, c.Path("f"), content)
	entries, tmps := cacheEntries(t, cacheDir)
	if len(entries) != 1 || len(tmps) > 0 {
		t.Errorf("a 5 MiB disk holds %d entries and %d temporary files, want 1 and 0", len(entries), len(tmps))
	}
}

// TestDiskCacheKeepsWrittenBlocks: the big blocks a mount writes are in
// its disk cache once uploaded, without a read, so a restarted mount reads
// the file back with its chunkserver stopped.
func TestDiskCacheKeepsWrittenBlocks(t *testing.T) {
	cacheDir := t.TempDir()
	c := startDiskCached(t, cacheDir, 0)
	content := randomBytes(10 << 20)
	if err := os.WriteFile(c.Path("f"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	waitEntries(t, cacheDir, 3)
	c.Restart(t)
	c.StopChunk(t, 0)
	readBack(t, c.Path("f"), content)
}

// TestDiskCacheSkipsSmallBlocks: small files, written and then read after
// a restart, leave no entries (each would cost a file of its own).
func TestDiskCacheSkipsSmallBlocks(t *testing.T) {
	cacheDir := t.TempDir()
	c := startDiskCached(t, cacheDir, 0)
	files := make(map[string][]byte)
	for i, size := range []int{1, 4096, 40 << 10, 64<<10 - 1} {
		name := filepath.Join("small", string(rune('a'+i)))
		files[name] = randomBytes(size)
	}
	if err := os.Mkdir(c.Path("small"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(c.Path(name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c.Restart(t)
	for name, data := range files {
		got, err := os.ReadFile(c.Path(name))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s read back: err %v, equal %v", name, err, bytes.Equal(got, data))
		}
	}
	time.Sleep(200 * time.Millisecond) // the disk cache writes in the background
	if entries, tmps := cacheEntries(t, cacheDir); len(entries)+len(tmps) > 0 {
		t.Errorf("small blocks left %d entries and %d temporary files, want none", len(entries), len(tmps))
	}
}
