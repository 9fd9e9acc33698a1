package fs_test

import (
	"os"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"golang.org/x/sys/unix"
)

// TestFIFOKeptWhileOpen: a FIFO whose last name goes while it is open
// (an unlink, a rename over it) lives on until it is closed, as on ext4:
// fstat, fchmod and fgetxattr on it work and the pipe still carries data.
// The kernel opens FIFOs without telling the mount, so the mount keeps
// them for as long as the kernel holds them, and purges them after.
func TestFIFOKeptWhileOpen(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	dir := c.Path("d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	inodesUsed := func() uint64 { return inodesInUse(t, dir) }
	before := inodesUsed()

	open := func(name string) int {
		t.Helper()
		if err := unix.Mkfifo(name, 0o640); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Open(name, unix.O_RDWR|unix.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		return fd
	}
	unlinked := open(c.Path("d", "unlinked"))
	defer unix.Close(unlinked)
	if err := unix.Unlink(c.Path("d", "unlinked")); err != nil {
		t.Fatal(err)
	}
	replaced := open(c.Path("d", "replaced"))
	defer unix.Close(replaced)
	if err := os.WriteFile(c.Path("d", "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Rename(c.Path("d", "file"), c.Path("d", "replaced")); err != nil {
		t.Fatal(err)
	}

	for what, fd := range map[string]int{"unlinked": unlinked, "renamed over": replaced} {
		if err := unix.Fchmod(fd, 0o600); err != nil {
			t.Fatalf("fchmod of a FIFO %s while open: %v", what, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Nlink != 0 || st.Mode != unix.S_IFIFO|0o600 {
			t.Fatalf("fstat of a FIFO %s while open: nlink %d mode %#o, %v; want 0, %#o", what, st.Nlink, st.Mode, err, unix.S_IFIFO|0o600)
		}
		if err := unix.Fsetxattr(fd, "trusted.k", []byte("v"), 0); err != nil {
			t.Fatalf("fsetxattr of a FIFO %s while open: %v", what, err)
		}
		buf := make([]byte, 8)
		if n, err := unix.Fgetxattr(fd, "trusted.k", buf); err != nil || string(buf[:n]) != "v" {
			t.Fatalf("fgetxattr of a FIFO %s while open: %q, %v", what, buf[:n], err)
		}
		if _, err := unix.Fgetxattr(fd, "trusted.none", buf); err != unix.ENODATA {
			t.Fatalf("fgetxattr of a missing name on a FIFO %s while open: %v, want ENODATA", what, err)
		}
		if _, err := unix.Write(fd, []byte("through")); err != nil {
			t.Fatal(err)
		}
		if n, err := unix.Read(fd, buf); err != nil || string(buf[:n]) != "through" {
			t.Fatalf("read from a FIFO %s while open: %q, %v", what, buf[:n], err)
		}
	}
	// The two FIFOs, and the file now named "replaced".
	if got := inodesUsed(); got != before+3 {
		t.Fatalf("%d inodes in use with two nameless FIFOs open, want %d", got, before+3)
	}

	unix.Close(unlinked)
	unix.Close(replaced)
	for deadline := time.Now().Add(10 * time.Second); inodesUsed() != before+1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d inodes in use after the FIFOs were closed, want %d: they were not purged", inodesUsed(), before+1)
		}
	}
}
