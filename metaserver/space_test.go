package metaserver_test

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
)

// TestSpaceAccounting: the reconcile pass counts the bytes files name,
// their distinct blocks (duplicates stored once), one copy of each on
// disk (text compressed), and all copies, for `cairn status`.
func TestSpaceAccounting(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Chunkservers: 3, Replicas: 3, ReconcileEvery: 100 * time.Millisecond})
	noise := randomBytes(1 << 20)
	text := bytes.Repeat([]byte("the same line of text, over and over\n"), 28_000) // ~1 MiB
	for name, data := range map[string][]byte{"a": noise, "b": noise, "c": text} {
		if err := os.WriteFile(c.Path(name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files := uint64(2*len(noise) + len(text))
	var got *wire.TasksResp
	waitFor(t, 10*time.Second, "a pass that counts every file", func() bool {
		got = tasks(t, c)
		return got.FileBytes == files && got.DiskBytes > 0
	})
	if want := uint64(len(noise) + len(text)); got.BlockBytes != want {
		t.Errorf("distinct block bytes %d, want %d (the duplicate file stored once)", got.BlockBytes, want)
	}
	if got.StoredBytes >= got.BlockBytes-uint64(len(text))/2 || got.StoredBytes < uint64(len(noise)) {
		t.Errorf("stored per copy %d for %d bytes of blocks, of which %d compressible", got.StoredBytes, got.BlockBytes, len(text))
	}
	if got.DiskBytes != 3*got.StoredBytes {
		t.Errorf("on disks %d, want 3 copies of %d", got.DiskBytes, got.StoredBytes)
	}
}
