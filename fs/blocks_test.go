package fs_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"golang.org/x/sys/unix"
)

// TestBlocksCountStoredBytes checks st_blocks on a sparse file through
// writes (before and after their commit), an overwrite, a punched hole
// and a truncate, and that du and cp --sparse=auto, which read it, see
// the holes: du counts only the data, and cp leaves the copy sparse.
func TestBlocksCountStoredBytes(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Replicas: 1, Chunkservers: 1})
	path := c.Path("sparse")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	blocks := func(when string, want int64) {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		if st.Blocks != want {
			t.Fatalf("%s: st_blocks %d (size %d), want %d", when, st.Blocks, st.Size, want)
		}
	}
	page := bytes.Repeat([]byte("cairn!"), 4096/6+1)[:4096]
	const far = 64 << 20
	for _, off := range []int64{0, far} {
		if _, err := f.WriteAt(page, off); err != nil {
			t.Fatal(err)
		}
	}
	blocks("written, not yet committed", 16)
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	blocks("committed", 16)

	out, err := exec.Command("du", "-B1", path).CombinedOutput()
	if err != nil || strings.Fields(string(out))[0] != "8192" {
		t.Fatalf("du -B1: %q %v, want 8192 bytes", out, err)
	}
	copied := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "--sparse=auto", path, copied).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	var st unix.Stat_t
	if err := unix.Stat(copied, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != far+4096 || st.Blocks > 64 {
		t.Fatalf("cp --sparse=auto made a copy of %d bytes in %d blocks, want %d bytes in at most 64 (two pages and slack)", st.Size, st.Blocks, far+4096)
	}
	for _, off := range []int64{0, far} {
		got := make([]byte, 4096)
		g, err := os.Open(copied)
		if err != nil {
			t.Fatal(err)
		}
		_, err = g.ReadAt(got, off)
		g.Close()
		if err != nil || !bytes.Equal(got, page) {
			t.Fatalf("the copy at %d: %v, not the page written", off, err)
		}
	}

	if _, err := f.WriteAt(page, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	blocks("overwritten", 16)
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, 4096); err != nil {
		t.Fatal(err)
	}
	blocks("first page punched", 8)
	if err := f.Truncate(far); err != nil {
		t.Fatal(err)
	}
	blocks("truncated to the hole", 0)

	whole, err := os.Create(c.Path("whole"))
	if err != nil {
		t.Fatal(err)
	}
	defer whole.Close()
	if _, err := whole.Write(bytes.Repeat([]byte{7}, 1_000_000)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	f = whole
	blocks("a file written whole", (1_000_000+511)/512)
}
