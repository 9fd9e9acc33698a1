package fs_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/client"
	"github.com/cairn-fs/cairn/fs"
	"github.com/cairn-fs/cairn/internal/testcluster"
)

// TestCloseToOpenAcrossMounts: a second mount that read a file (and so
// has it in its page cache and its size in its attribute cache) sees,
// at its next open, every byte another mount wrote and closed since,
// even within the attribute timeout; reading it again unchanged returns
// the same bytes from the kept page cache.
func TestCloseToOpenAcrossMounts(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	ctx := context.Background()
	c2, err := client.New(ctx, client.Config{Meta: c.Meta.Addr(), CA: c.CA})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c2.Close)
	dir2 := filepath.Join(t.TempDir(), "mnt2")
	os.Mkdir(dir2, 0o755)
	m2, err := fs.New(c2, dir2, fs.Options{AttrTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m2.Close(ctx) })

	a, b := c.Path("f"), filepath.Join(dir2, "f")
	v1 := bytes.Repeat([]byte("one "), 1000)
	if err := os.WriteFile(a, v1, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the second read may come from the kept page cache
		if got, err := os.ReadFile(b); err != nil || !bytes.Equal(got, v1) {
			t.Fatalf("mount 2, read %d: err=%v, %d bytes, want %d", i, err, len(got), len(v1))
		}
	}
	for round, v := range [][]byte{
		bytes.Repeat([]byte("two!"), 3000),         // grows
		bytes.Repeat([]byte("3"), 100),             // shrinks
		bytes.Repeat([]byte("four"), 3000)[:11999], // same size as before... almost
		bytes.Repeat([]byte("FOUR"), 3000)[:11999], // same size, new bytes
	} {
		if err := os.WriteFile(a, v, 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(b); err != nil || !bytes.Equal(got, v) {
			t.Fatalf("round %d: mount 2 read err=%v, %d bytes, want %d (%q…)", round, err, len(got), len(v), got[:min(len(got), 8)])
		}
	}
}
