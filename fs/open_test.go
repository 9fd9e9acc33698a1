package fs_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/cairn-fs/cairn/internal/testcluster"
)

// TestOpenThroughRemovedName: a mount whose kernel still has a name
// cached opens the file now under that name, not the one another mount
// removed since (the open answers ESTALE and the kernel looks again).
func TestOpenThroughRemovedName(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	_, second := c.AddMount(t)
	mine, theirs := c.Path("f"), filepath.Join(second, "f")
	if err := os.WriteFile(mine, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(mine); err != nil || string(got) != "old" {
		t.Fatalf("read %q, %v", got, err)
	}
	if err := os.Remove(theirs); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(theirs, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(mine)
	if err != nil || string(got) != "new" {
		t.Fatalf("read through the cached name: %q, %v; want the new file's \"new\"", got, err)
	}
	// A file this mount holds open survives its last unlink here, and
	// can be opened again (through /proc/self/fd).
	f, err := os.Open(mine)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Remove(mine); err != nil {
		t.Fatal(err)
	}
	again, err := os.ReadFile(filepath.Join("/proc/self/fd", strconv.Itoa(int(f.Fd()))))
	if err != nil || string(again) != "new" {
		t.Fatalf("reopen of an unlinked open file: %q, %v", again, err)
	}
}
