package fs_test

import (
	"os"
	"testing"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"golang.org/x/sys/unix"
)

// TestRemovedDirectoryKeepsAttributes: a directory removed (by rmdir or
// by a rename over it) while a process has it open (and just listed it)
// still answers fstat, fchmod and fchown, with no links, and nothing can
// be created in it; its inode goes at the last close.
func TestRemovedDirectoryKeepsAttributes(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	for _, how := range []string{"rename over", "rmdir"} {
		d := c.Path("d")
		if err := os.Mkdir(d, 0o750); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Open(d, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		var before unix.Stat_t
		if err := unix.Fstat(fd, &before); err != nil {
			t.Fatal(err)
		}
		// A listing keeps the directory's attributes to answer the
		// kernel's next GETATTR of it: not the fstat after its removal.
		if _, err := os.ReadDir(d); err != nil {
			t.Fatal(err)
		}
		switch how {
		case "rmdir":
			err = unix.Rmdir(d)
		default:
			if err = os.Mkdir(c.Path("other"), 0o755); err == nil {
				err = unix.Rename(c.Path("other"), d)
			}
		}
		if err != nil {
			t.Fatalf("%s: %v", how, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			t.Fatalf("%s: fstat of the removed directory: %v", how, err)
		}
		if st.Ino != before.Ino || st.Mode != before.Mode || st.Nlink != 0 {
			t.Errorf("%s: fstat: ino %d mode %#o nlink %d; want ino %d mode %#o nlink 0", how, st.Ino, st.Mode, st.Nlink, before.Ino, before.Mode)
		}
		if err := unix.Fchmod(fd, 0o700); err != nil {
			t.Errorf("%s: fchmod: %v", how, err)
		}
		if err := unix.Fchown(fd, 12, 34); err != nil {
			t.Errorf("%s: fchown: %v", how, err)
		}
		if err := unix.Fstat(fd, &st); err != nil || st.Mode&0o777 != 0o700 || st.Uid != 12 || st.Gid != 34 {
			t.Errorf("%s: after fchmod and fchown: mode %#o %d:%d, %v", how, st.Mode&0o777, st.Uid, st.Gid, err)
		}
		if _, err := unix.Openat(fd, "new", unix.O_CREAT|unix.O_WRONLY, 0o644); err != unix.ENOENT {
			t.Errorf("%s: create in the removed directory: %v, want ENOENT", how, err)
		}
		if err := unix.Mkdirat(fd, "sub", 0o755); err != unix.ENOENT {
			t.Errorf("%s: mkdir in the removed directory: %v, want ENOENT", how, err)
		}
		if err := unix.Close(fd); err != nil {
			t.Fatal(err)
		}
		if how != "rmdir" {
			os.Remove(d)
		}
	}
}
