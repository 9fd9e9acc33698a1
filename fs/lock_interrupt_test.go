package fs_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/cairn-fs/cairn/fs"
	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// TestLockInterrupted: a lock request the kernel interrupts (a signal to
// the caller) runs to its end unless it waits. F_SETLK and F_GETLK never
// fail with EINTR on a local file system; stress-ng's lock stressors,
// whose timer signals interrupt them, failed on cairn. A lock granted
// while the caller was told EINTR would also have stayed held.
func TestLockInterrupted(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{NoMount: true, Replicas: 1, Chunkservers: 1})
	a, err := c.Client.Make(context.Background(), &wire.MakeReq{Parent: 1, Name: "f", Mode: 0o100644})
	if err != nil {
		t.Fatal(err)
	}
	f := fs.NewUnmounted(c.Client, slog.New(slog.DiscardHandler))
	interrupted := make(chan struct{})
	close(interrupted)
	lock := func(owner uint64, typ uint32) *fuse.LkIn {
		return &fuse.LkIn{
			InHeader: fuse.InHeader{NodeId: a.Ino},
			Owner:    owner,
			Lk:       fuse.FileLock{Start: 0, End: 1<<63 - 1, Typ: typ, Pid: uint32(owner)},
		}
	}

	if st := f.SetLk(interrupted, lock(1, unix.F_WRLCK)); st != fuse.OK {
		t.Fatalf("interrupted F_SETLK on a free file: %v, want OK", st)
	}
	var out fuse.LkOut
	if st := f.GetLk(interrupted, lock(2, unix.F_WRLCK), &out); st != fuse.OK || out.Lk.Typ != unix.F_WRLCK || out.Lk.Pid != 1 {
		t.Fatalf("interrupted F_GETLK: %v, lock %+v; want OK and owner 1's write lock", st, out.Lk)
	}
	if st := f.SetLk(interrupted, lock(2, unix.F_WRLCK)); st != fuse.EAGAIN {
		t.Fatalf("interrupted F_SETLK on a locked file: %v, want EAGAIN", st)
	}
	// A lock that waits gives way to the signal.
	if st := f.SetLkw(interrupted, lock(2, unix.F_WRLCK)); st != fuse.EINTR {
		t.Fatalf("interrupted F_SETLKW on a locked file: %v, want EINTR", st)
	}
	if st := f.SetLk(interrupted, lock(1, unix.F_UNLCK)); st != fuse.OK {
		t.Fatalf("interrupted unlock: %v, want OK", st)
	}
	if st := f.SetLk(interrupted, lock(2, unix.F_WRLCK)); st != fuse.OK {
		t.Fatalf("interrupted F_SETLK after the unlock: %v, want OK", st)
	}
}
