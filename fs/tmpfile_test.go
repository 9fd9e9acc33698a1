package fs_test

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"golang.org/x/sys/unix"
)

// TestTmpfile: open's O_TMPFILE makes a file in no directory. Linked into
// place through /proc/self/fd, it keeps what was written before and
// after, across a restart; with O_EXCL it cannot be linked; left
// unlinked, it goes at its last close. All as on ext4.
func TestTmpfile(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	dir := c.Path("d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	inodesUsed := func() uint64 { return inodesInUse(t, dir) }
	linkFD := func(fd int, name string) error {
		return unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), unix.AT_FDCWD, name, unix.AT_SYMLINK_FOLLOW)
	}
	before := inodesUsed()

	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR, 0o640)
	if err != nil {
		t.Fatalf("open O_TMPFILE: %v", err)
	}
	first := bytes.Repeat([]byte("before the link "), 4096)
	if _, err := unix.Write(fd, first); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Nlink != 0 || st.Mode != unix.S_IFREG|0o640 || st.Size != int64(len(first)) {
		t.Fatalf("fstat of the tmpfile: nlink %d mode %#o size %d, %v; want 0, %#o, %d", st.Nlink, st.Mode, st.Size, err, unix.S_IFREG|0o640, len(first))
	}
	if names, err := os.ReadDir(dir); err != nil || len(names) != 0 {
		t.Fatalf("the directory lists %v (%v) with only a tmpfile in it", names, err)
	}
	named := c.Path("d", "named")
	if err := linkFD(fd, named); err != nil {
		t.Fatalf("link the tmpfile: %v", err)
	}
	second := []byte("after the link")
	if _, err := unix.Write(fd, second); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fstat(fd, &st); err != nil || st.Nlink != 1 {
		t.Fatalf("fstat after the link: nlink %d, %v", st.Nlink, err)
	}
	unix.Close(fd)
	want := append(first, second...)
	if got, err := os.ReadFile(named); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the linked tmpfile reads %d bytes (%v), want %d", len(got), err, len(want))
	}

	// O_EXCL: never linkable.
	fd, err = unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := linkFD(fd, c.Path("d", "excl")); err != unix.ENOENT {
		t.Errorf("link of an O_EXCL tmpfile: %v, want ENOENT", err)
	}
	unix.Close(fd)

	// Unlinked tmpfiles, written and read back through a reopen, go at
	// their last close.
	var fds []int
	for range 3 {
		fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, fd)
		if _, err := unix.Write(fd, first); err != nil {
			t.Fatal(err)
		}
		again, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", fd))
		if err != nil {
			t.Fatalf("reopen a tmpfile through /proc: %v", err)
		}
		got, err := os.ReadFile(again.Name())
		again.Close()
		if err != nil || !bytes.Equal(got, first) {
			t.Fatalf("a reopened tmpfile reads %d bytes (%v), want %d", len(got), err, len(first))
		}
	}
	if used := inodesUsed(); used != before+4 {
		t.Errorf("%d inodes in use with the linked file and 3 tmpfiles open, want %d", used, before+4)
	}
	for _, fd := range fds {
		unix.Close(fd)
	}
	// The kernel sends RELEASE after close returns.
	for deadline := time.Now().Add(10 * time.Second); inodesUsed() != before+1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d inodes in use 10s after the tmpfiles were closed, want %d", inodesUsed(), before+1)
		}
	}

	c.Restart(t)
	if got, err := os.ReadFile(named); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("after a restart the linked tmpfile reads %d bytes (%v), want %d", len(got), err, len(want))
	}
	if names, _ := os.ReadDir(dir); len(names) != 1 || !slices.ContainsFunc(names, func(e os.DirEntry) bool { return e.Name() == "named" }) {
		t.Errorf("after a restart the directory lists %v, want only named", names)
	}
}

// inodesInUse is the count of inodes statfs reports in use on the file
// system that holds dir.
func inodesInUse(t *testing.T, dir string) uint64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Files - st.Ffree
}
