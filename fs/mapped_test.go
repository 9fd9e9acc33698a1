package fs_test

import (
	"golang.org/x/sys/unix"
)

// writeMapped copies data into m, a shared mapping of a file on a cairn
// mount, from inside a system call (a pread from a memfd) rather than
// with copy. The mount's FUSE server runs in the test process, and a
// page fault on the mapping waits for that server's READ. Go code that
// takes the fault cannot be preempted, so a garbage collection that
// stops the world meanwhile deadlocks the process (seen in a model run
// after 2 s of it); a fault taken inside a system call leaves the runtime
// free to run the server. A program on a real mount is not in the
// server's process, so nothing of this applies to it.
func writeMapped(m, data []byte) error {
	fd, err := unix.MemfdCreate("cairn-test-mapped", unix.MFD_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for done := 0; done < len(data); {
		n, err := unix.Write(fd, data[done:])
		if err != nil {
			return err
		}
		done += n
	}
	for done := 0; done < len(data); {
		n, err := unix.Pread(fd, m[done:len(data)], int64(done))
		if err != nil {
			return err
		}
		if n == 0 {
			return unix.EIO // the memfd holds len(data) bytes: cannot happen
		}
		done += n
	}
	return nil
}
