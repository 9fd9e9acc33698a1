package fs_test

import (
	"testing"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"golang.org/x/sys/unix"
)

// TestReopenWhileReleasing: a file closed and at once opened again and
// written shows the new size to a stat before the close. The kernel
// sends the first descriptor's RELEASE without waiting for it, so it
// races with the second OPEN; a release that dropped the mount's File
// just as the open took it left the open file unknown to the mount,
// and a stat then showed the committed size, 0 (seen by the model test,
// one round in a few hundred here).
func TestReopenWhileReleasing(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	p := c.Path("f")
	var st unix.Stat_t
	for round := range 400 {
		unix.Unlink(p)
		fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		unix.Stat(p, &st) // without it the race was not seen
		unix.Close(fd)
		if fd, err = unix.Open(p, unix.O_RDWR|unix.O_APPEND, 0); err != nil {
			t.Fatal(err)
		}
		_, err = unix.Write(fd, []byte("x"))
		if err == nil {
			err = unix.Lstat(p, &st)
		}
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size != 1 {
			t.Fatalf("round %d: a file written with 1 byte and still open has size %d", round, st.Size)
		}
	}
}
