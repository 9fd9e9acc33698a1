package client

import (
	"context"
	"time"

	"github.com/cairn-fs/cairn/internal/wire"
)

// Lock is a file lock as the kernel describes it: Owner is the kernel's
// lock owner (unique within this client), Kind is wire.LockPosix or
// wire.LockFlock, Type is wire.LockRead, LockWrite or LockUnlock, and
// [Start, End] is inclusive (End wire.LockEnd: to the end of the file).
type Lock struct {
	Owner      uint64
	Pid        uint32
	Kind, Type uint8
	Start, End uint64
}

func (c *Client) lockReq(ino uint64, lk Lock, wait bool) *wire.LockReq {
	return &wire.LockReq{
		Session: c.session, Ino: ino, Owner: lk.Owner, Pid: lk.Pid,
		Kind: lk.Kind, Type: lk.Type, Start: lk.Start, End: lk.End, Wait: wait,
	}
}

func conflictOf(r *wire.LockResp, kind uint8) Lock {
	return Lock{Pid: r.Pid, Kind: kind, Type: r.Type, Start: r.Start, End: r.End}
}

// TestLock returns a lock of another owner (of any client) that would
// keep lk out; ok is false if there is none.
func (c *Client) TestLock(ctx context.Context, ino uint64, lk Lock) (conflict Lock, ok bool, err error) {
	var resp wire.LockResp
	if err := c.meta(ctx, wire.MGetLock, c.lockReq(ino, lk, false), &resp); err != nil {
		return Lock{}, false, err
	}
	return conflictOf(&resp, lk.Kind), resp.Conflict, nil
}

// SetLock takes, changes or releases lk. Without wait it returns at once
// with taken false if another owner's lock is in the way; with wait it
// returns only when it has the lock, or with ctx's error when ctx ends
// (the waiting process was interrupted) before it got the lock.
//
// Locks also order data between mounts, as on NFS: an unlock first
// commits this mount's writes to the file, and a lock finding that the
// file changed since this mount's caches were filled drops them (stale
// true: the caller drops the kernel's page cache too), so a process
// that locks sees what the previous holder wrote under the lock.
func (c *Client) SetLock(ctx context.Context, ino uint64, lk Lock, wait bool) (taken, stale bool, err error) {
	var flushErr error
	if lk.Type == wire.LockUnlock {
		if f := c.openFile(ino); f != nil {
			flushErr = f.Flush(ctx) // reported, but the lock goes all the same
		}
	} else {
		// Noted before the call: if the answer is lost, the lock may be
		// held all the same, and the owner's close must still release it.
		c.noteLockOwner(ino, lk.Owner)
	}
	req := c.lockReq(ino, lk, wait)
	if wait && lk.Type != wire.LockUnlock {
		req.Call = c.lastLockCall.Add(1) // an unlock never waits
	}
	for {
		if err := ctx.Err(); err != nil && req.Call != 0 {
			return false, false, err
		}
		var resp wire.LockResp
		interrupted, err := c.setLockCall(ctx, req, &resp)
		if err != nil {
			if interrupted {
				return false, false, ctx.Err() // EINTR, not a server failure
			}
			return false, false, err
		}
		if interrupted && resp.Conflict {
			return false, false, ctx.Err()
		}
		if !resp.Conflict {
			if lk.Type != wire.LockUnlock {
				if f := c.openFile(ino); f != nil {
					stale = f.catchUp(resp.Mtime)
				}
			}
			return true, stale, flushErr
		}
		if !wait {
			return false, false, flushErr
		}
		// The metaserver waits a bounded time per call: ask again.
	}
}

// cancelGrace bounds how long an interrupted lock wait waits for the
// metaserver to answer its cancel before it gives up on the answer.
const cancelGrace = 5 * time.Second

// setLockCall makes an MSetLock call. A waiting one that ctx interrupts
// (a signal to the process) is not dropped: the metaserver may grant the
// lock at that very moment, and the owner would hold a lock it was told
// it failed to get. The call is cancelled instead (MCancelLock), and its
// answer says which it was: the lock (interrupted, but taken: the
// process gets it, as on a local file system when the lock comes first),
// or a conflict.
func (c *Client) setLockCall(ctx context.Context, req *wire.LockReq, resp *wire.LockResp) (interrupted bool, err error) {
	if req.Call == 0 {
		return false, c.meta(ctx, wire.MSetLock, req, resp)
	}
	type answer struct {
		resp wire.LockResp
		err  error
	}
	callCtx, stop := context.WithCancel(c.closing)
	defer stop()
	done := make(chan answer, 1)
	go func() {
		var a answer
		a.err = c.meta(callCtx, wire.MSetLock, req, &a.resp)
		done <- a
	}()
	select {
	case a := <-done:
		*resp = a.resp
		return false, a.err
	case <-ctx.Done():
	}
	select {
	case a := <-done: // the answer came with the signal: no cancel needed
		*resp = a.resp
		return true, a.err
	default:
	}
	cancelCtx, cancel := context.WithTimeout(context.Background(), cancelGrace)
	defer cancel()
	cancelReq := &wire.LockReq{Session: req.Session, Ino: req.Ino, Owner: req.Owner, Call: req.Call}
	if err := c.meta(cancelCtx, wire.MCancelLock, cancelReq, &wire.Empty{}); err != nil {
		c.cfg.Log.Warn("could not cancel an interrupted lock wait; the lock may be held until the file is closed", "ino", req.Ino, "err", err)
		return true, err
	}
	select {
	case a := <-done:
		*resp = a.resp
		return true, a.err
	case <-cancelCtx.Done():
		c.cfg.Log.Warn("no answer to an interrupted lock wait; the lock may be held until the file is closed", "ino", req.Ino)
		return true, cancelCtx.Err()
	}
}

// catchUp drops the cached layout if the cluster's copy (whose mtime is
// mtime, 0 if unknown) is not the one the caches reflect, and reports
// whether it was not.
func (f *File) catchUp(mtime int64) bool {
	f.mu.Lock()
	if mtime != 0 && mtime == f.mu.known {
		f.mu.Unlock()
		return false
	}
	f.mu.known = mtime
	if !f.dirtyLocked() { // this mount's own unflushed writes stay on top
		f.dropLayoutLocked()
	}
	f.mu.Unlock()
	f.awaitFills() // before the caller drops the kernel's pages
	return true
}

// ReleaseLocks drops every lock owner holds on ino, of both kinds: a
// close(2) by a process releases its POSIX locks, the last close of an
// open file description its flock and OFD locks. It calls the metaserver
// only if owner ever locked ino through this client.
func (c *Client) ReleaseLocks(ctx context.Context, ino, owner uint64) error {
	c.mu.Lock()
	owners := c.mu.lockOwners[ino]
	had := owners[owner]
	delete(owners, owner)
	if len(owners) == 0 {
		delete(c.mu.lockOwners, ino)
	}
	c.mu.Unlock()
	if !had {
		return nil
	}
	for _, kind := range []uint8{wire.LockPosix, wire.LockFlock} {
		lk := Lock{Owner: owner, Kind: kind, Type: wire.LockUnlock, Start: 0, End: wire.LockEnd}
		if _, _, err := c.SetLock(ctx, ino, lk, false); err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) noteLockOwner(ino, owner uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.lockOwners[ino] == nil {
		c.mu.lockOwners[ino] = make(map[uint64]bool)
	}
	c.mu.lockOwners[ino][owner] = true
}
