package fs_test

import (
	"bytes"
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
)

// TestStatAfterCloseAnswersLocally: the GETATTR the kernel sends when a
// file just written and closed is looked at (an editor, or a program
// that writes a file and then stats it) is answered with the attributes the close's
// commit returned, not by the metaserver, and they are the ones the
// metaserver holds; after a second write and close, they show it.
func TestStatAfterCloseAnswersLocally(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	check := func(name string, size int64) {
		t.Helper()
		var st syscall.Stat_t
		getattrs := c.Client.MetaCalls(wire.MGetAttr)
		if err := syscall.Stat(c.Path(name), &st); err != nil {
			t.Fatal(err)
		}
		if n := c.Client.MetaCalls(wire.MGetAttr) - getattrs; n != 0 {
			t.Fatalf("stat of %s after writing and closing it asked the metaserver %d times, want 0", name, n)
		}
		held, err := c.Client.GetAttr(context.Background(), st.Ino)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size != size || st.Size != int64(held.Size) || st.Mtim.Nano() != held.Mtime || st.Ctim.Nano() != held.Ctime || st.Mode != held.Mode {
			t.Fatalf("%s after close: size %d mtime %d ctime %d mode %o, want size %d and what the metaserver holds: size %d mtime %d ctime %d mode %o",
				name, st.Size, st.Mtim.Nano(), st.Ctim.Nano(), st.Mode, size, held.Size, held.Mtime, held.Ctime, held.Mode)
		}
	}
	for i, name := range []string{"a", "b", "c"} {
		data := bytes.Repeat([]byte{'x'}, 5000*(i+1))
		if err := os.WriteFile(c.Path(name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		check(name, int64(len(data)))
	}

	f, err := os.OpenFile(c.Path("a"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	time.Sleep(10 * time.Millisecond) // so that the write moves mtime
	if _, err := f.Write([]byte("tail")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	check("a", 5004)
}
