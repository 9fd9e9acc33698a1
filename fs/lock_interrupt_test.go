package fs_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/fs"
	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// unmountedLockFS starts a cluster with a file and returns the file
// system a mount would serve (not mounted, so that a test can hand its
// lock methods a cancel channel of its own), and lock, which makes a lock
// request on the whole file for owner (whose pid it also is).
func unmountedLockFS(t *testing.T) (*fs.FS, func(owner uint64, typ uint32) *fuse.LkIn) {
	c := testcluster.Start(t, testcluster.Options{NoMount: true, Replicas: 1, Chunkservers: 1})
	a, err := c.Client.Make(context.Background(), &wire.MakeReq{Parent: 1, Name: "f", Mode: 0o100644})
	if err != nil {
		t.Fatal(err)
	}
	lock := func(owner uint64, typ uint32) *fuse.LkIn {
		return &fuse.LkIn{
			InHeader: fuse.InHeader{NodeId: a.Ino},
			Owner:    owner,
			Lk:       fuse.FileLock{Start: 0, End: 1<<63 - 1, Typ: typ, Pid: uint32(owner)},
		}
	}
	return fs.NewUnmounted(c.Client, slog.New(slog.DiscardHandler)), lock
}

// TestLockInterrupted: a lock request the kernel interrupts (a signal to
// the caller) runs to its end unless it waits. F_SETLK and F_GETLK never
// fail with EINTR on a local file system; stress-ng's lock stressors,
// whose timer signals interrupt them, failed on cairn. A lock granted
// while the caller was told EINTR would also have stayed held.
func TestLockInterrupted(t *testing.T) {
	f, lock := unmountedLockFS(t)
	interrupted := make(chan struct{})
	close(interrupted)

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
	// An unlock through F_SETLKW does not wait, and runs to its end.
	if st := f.SetLkw(interrupted, lock(1, unix.F_UNLCK)); st != fuse.OK {
		t.Fatalf("interrupted unlock: %v, want OK", st)
	}
	if st := f.SetLk(interrupted, lock(2, unix.F_WRLCK)); st != fuse.OK {
		t.Fatalf("interrupted F_SETLK after the unlock: %v, want OK", st)
	}
}

// TestLockWaitInterruptedAsGranted interrupts F_SETLKW just as the lock
// it waits for is released, many times over. Whatever the race gives,
// the answer must match what is held: EINTR and the lock free, or OK and
// the lock taken. A wait that was dropped when interrupted left the lock
// granted to an owner told EINTR (held until its file's close).
func TestLockWaitInterruptedAsGranted(t *testing.T) {
	f, lock := unmountedLockFS(t)
	never := make(chan struct{})
	if st := f.SetLk(never, lock(1, unix.F_WRLCK)); st != fuse.OK {
		t.Fatalf("first lock: %v", st)
	}
	outcomes := map[fuse.Status]int{}
	for i := range 200 {
		interrupt := make(chan struct{})
		got := make(chan fuse.Status)
		go func() { got <- f.SetLkw(interrupt, lock(2, unix.F_WRLCK)) }()
		time.Sleep(time.Duration(i%20) * 50 * time.Microsecond) // the waiter may not even have asked yet
		unlocked := make(chan fuse.Status)
		go func() { unlocked <- f.SetLk(never, lock(1, unix.F_UNLCK)) }()
		close(interrupt)
		st := <-got
		if u := <-unlocked; u != fuse.OK {
			t.Fatalf("round %d: unlock: %v", i, u)
		}
		outcomes[st]++
		retake := f.SetLk(never, lock(1, unix.F_WRLCK))
		switch {
		case st == fuse.EINTR && retake != fuse.OK:
			t.Fatalf("round %d: F_SETLKW answered EINTR, but the lock is held (owner 1 relocking: %v)", i, retake)
		case st == fuse.OK:
			if retake != fuse.EAGAIN {
				t.Fatalf("round %d: F_SETLKW answered OK, but owner 1 could lock too (%v)", i, retake)
			}
			if st := f.SetLk(never, lock(2, unix.F_UNLCK)); st != fuse.OK {
				t.Fatal(st)
			}
			if st := f.SetLk(never, lock(1, unix.F_WRLCK)); st != fuse.OK {
				t.Fatalf("round %d: relock after owner 2's unlock: %v", i, st)
			}
		case st != fuse.EINTR:
			t.Fatalf("round %d: F_SETLKW answered %v", i, st)
		}
	}
	t.Logf("outcomes: %v", outcomes)
}
