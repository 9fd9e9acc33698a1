package fs

import (
	"context"

	"github.com/cairn-fs/cairn/client"
	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// File locks (fcntl F_GETLK/F_SETLK/F_SETLKW, F_OFD_*, and flock) are
// kept in the metaserver, so every mount of a cluster sees them. The
// kernel names the owner: a process's file table for fcntl locks, the
// open file description for flock and OFD locks. Release happens where
// the kernel says the owner let go: Flush (every close(2), carrying the
// closing process as owner) and Release (the last close of a description,
// which ends its flock and OFD locks).

// releaseFlockUnlock is FUSE_RELEASE_FLOCK_UNLOCK: Release carries the
// flock owner whose locks go with this description.
const releaseFlockUnlock = 1 << 1

// cancelContext turns go-fuse's cancel channel (closed when the kernel
// interrupts the request: a signal to the waiting process) into a context.
func cancelContext(cancel <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, stop := context.WithCancel(context.Background())
	go func() {
		select {
		case <-cancel:
			stop()
		case <-ctx.Done():
		}
	}()
	return ctx, stop
}

func lockOf(in *fuse.LkIn) client.Lock {
	kind := wire.LockPosix
	if in.LkFlags&fuse.LK_FLOCK != 0 {
		kind = wire.LockFlock
	}
	return client.Lock{
		Owner: in.Owner, Pid: in.Lk.Pid, Kind: kind, Type: uint8(in.Lk.Typ),
		Start: in.Lk.Start, End: min(in.Lk.End, wire.LockEnd),
	}
}

// GetLk, like a SetLk that does not wait, runs to its end even when the
// kernel interrupts it (a signal to the caller): it takes one metaserver
// call, and on a local file system neither F_GETLK nor F_SETLK fails with
// EINTR. Worse, a lock the metaserver granted while the caller was told
// EINTR would stay held until the file's close.
func (f *FS) GetLk(_ <-chan struct{}, in *fuse.LkIn, out *fuse.LkOut) fuse.Status {
	conflict, ok, err := f.c.TestLock(ctx(), in.NodeId, lockOf(in))
	if err != nil {
		return f.toStatus("getlk", err)
	}
	if !ok {
		out.Lk = fuse.FileLock{Start: in.Lk.Start, End: in.Lk.End, Typ: uint32(wire.LockUnlock)}
		return fuse.OK
	}
	out.Lk = fuse.FileLock{Start: conflict.Start, End: conflict.End, Typ: uint32(conflict.Type), Pid: conflict.Pid}
	return fuse.OK
}

func (f *FS) SetLk(cancel <-chan struct{}, in *fuse.LkIn) fuse.Status {
	return f.setLock(cancel, in, false)
}

func (f *FS) SetLkw(cancel <-chan struct{}, in *fuse.LkIn) fuse.Status {
	return f.setLock(cancel, in, true)
}

func (f *FS) setLock(cancel <-chan struct{}, in *fuse.LkIn, wait bool) fuse.Status {
	lk := lockOf(in)
	if lk.Type > wire.LockUnlock || lk.Start > lk.End {
		return fuse.EINVAL
	}
	if lk.Type != wire.LockUnlock {
		f.noteLockOwner(in.Fh, in.Owner)
	}
	// Only a lock that waits (F_SETLKW, not an unlock) gives way to a
	// signal (see GetLk).
	lockCtx := ctx()
	if wait && lk.Type != wire.LockUnlock {
		var stop context.CancelFunc
		lockCtx, stop = cancelContext(cancel)
		defer stop()
	}
	taken, stale, err := f.c.SetLock(lockCtx, in.NodeId, lk, wait)
	if stale && f.server != nil {
		// Another mount changed the file: drop the kernel's pages (and
		// attributes) of it, so this process reads the new data.
		f.server.InodeNotify(in.NodeId, 0, 0)
	}
	if err != nil {
		return f.toStatus("setlk", err)
	}
	if !taken {
		return fuse.EAGAIN
	}
	return fuse.OK
}

// noteLockOwner remembers that owner locked through handle fh, so that
// the handle's Release can drop OFD and flock locks.
func (f *FS) noteLockOwner(fh, owner uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h := f.mu.files[fh]; h != nil {
		if h.lockOwners == nil {
			h.lockOwners = make(map[uint64]bool)
		}
		h.lockOwners[owner] = true
	}
}

// releaseHandleLocks runs when handle h on ino was released: the owners
// that locked through it lose their locks on ino, unless they also locked
// through another handle still open (a process whose POSIX locks moved to
// a later descriptor: its close of this one was already handled by Flush).
func (f *FS) releaseHandleLocks(ino uint64, h *fileHandle, flockOwner uint64) {
	f.mu.Lock()
	owners := h.lockOwners
	if flockOwner != 0 {
		owners = map[uint64]bool{flockOwner: true}
		for o := range h.lockOwners {
			owners[o] = true
		}
	}
	for _, other := range f.mu.files {
		for o := range other.lockOwners {
			delete(owners, o)
		}
	}
	f.mu.Unlock()
	for o := range owners {
		if err := f.c.ReleaseLocks(ctx(), ino, o); err != nil {
			f.log.Error("release locks at close", "ino", ino, "err", err)
		}
	}
}
