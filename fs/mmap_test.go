package fs_test

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairn-fs/cairn/internal/testcluster"
)

// mmapWrite maps path (size bytes, made by ftruncate) shared and writable
// in a child process, writes patches through the mapping, msyncs, unmaps
// and closes.
func mmapWrite(t *testing.T, path string, size int, patches []patch) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(int64(size)); err != nil {
		t.Fatal(err)
	}
	// Patches go in order: they overlap.
	if err := mapWrite(int(f.Fd()), 0, size, patches, true, 0); err != nil {
		t.Fatalf("write through a mapping: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestMmapSharedWriteSurvivesRestart: bytes written through a shared
// writable mapping (msync, munmap, close) reach the cluster: another
// mount reads them, and so does the mount after a cluster restart. A
// local file gets the same treatment and the two must be equal.
func TestMmapSharedWriteSurvivesRestart(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	_, mnt2 := c.AddMount(t)
	rng := rand.New(rand.NewPCG(3, 4))
	const size = 9<<20 + 12345 // three blocks, the last one partial
	var patches []patch
	for _, off := range []int{0, 4095, 4 << 20, 4<<20 - 7, 8<<20 + 100, size - 10} {
		p := make([]byte, 10+rng.IntN(20000))
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		patches = append(patches, patch{off, p[:min(len(p), size-off)]})
	}
	local := filepath.Join(t.TempDir(), "f")
	mmapWrite(t, local, size, patches)
	want, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	// Once on a new sparse file, once over existing data.
	mmapWrite(t, c.Path("sparse"), size, patches)
	if err := os.WriteFile(c.Path("full"), bytes.Repeat([]byte{0}, size), 0o644); err != nil {
		t.Fatal(err)
	}
	mmapWrite(t, c.Path("full"), size, patches)
	check := func(path, when string) {
		t.Helper()
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s %s: %d bytes, differs from the local file (%d bytes) at %d", path, when, len(got), len(want), firstDiff(got, want))
		}
	}
	for _, name := range []string{"sparse", "full"} {
		check(c.Path(name), "same mount")
		check(filepath.Join(mnt2, name), "other mount")
	}
	c.Restart(t)
	for _, name := range []string{"sparse", "full"} {
		check(c.Path(name), "after restart")
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
