package metaserver

import (
	"context"
	"sync"
	"time"

	"github.com/cairn-fs/cairn/internal/wire"
)

// File locks live in memory only, keyed by inode and kind, and belong to
// an owner: a client session and the kernel's lock owner within it (a
// process's file table for fcntl locks, an open file description for
// flock and OFD locks). A session that expires loses its locks; a
// metaserver restart loses every lock, as an NFS server's does (there is
// no reclaim period: a client is not told that it lost a lock).
//
// POSIX semantics: a conflict exists only between different owners, when
// ranges overlap and at least one lock is a write lock. An owner's own
// locks are split, replaced and merged, so that it holds at most one lock
// per byte and adjacent ranges of one type are one lock.

// lockWaitMax bounds how long one waiting MSetLock call is held; the
// client asks again, so a wait survives a dropped connection.
const lockWaitMax = 10 * time.Second

type lockOwner struct{ session, owner uint64 }

type heldLock struct {
	lockOwner
	typ        uint8
	start, end uint64 // inclusive
	pid        uint32
}

type lockKey struct {
	ino  uint64
	kind uint8
}

type lockTable struct {
	mu struct {
		sync.Mutex
		held map[lockKey][]heldLock
		// changed is closed (and replaced) whenever a lock goes, waking
		// every waiter to try again.
		changed chan struct{}
		// waiting says what each blocked POSIX owner waits for, to find
		// deadlocks (deadlockLocked).
		waiting map[lockOwner]waitFor
		// cancelled holds the waits that clients gave up (MCancelLock),
		// each with when, until their MSetLock sees it: the cancel can
		// overtake the call it ends.
		cancelled map[lockCall]time.Time
	}
}

// lockCall names one waiting MSetLock, with its retries.
type lockCall struct{ session, call uint64 }

// cancelKeep is how long a cancel waits for the call it ends; a call
// that has not come by then was lost.
const cancelKeep = 2 * lockWaitMax

type waitFor struct {
	key  lockKey
	want heldLock
}

func newLockTable() *lockTable {
	l := &lockTable{}
	l.mu.held = make(map[lockKey][]heldLock)
	l.mu.changed = make(chan struct{})
	l.mu.waiting = make(map[lockOwner]waitFor)
	l.mu.cancelled = make(map[lockCall]time.Time)
	return l
}

func overlaps(a, b heldLock) bool { return a.start <= b.end && b.start <= a.end }

// conflictLocked returns a lock of another owner that keeps want out.
func (l *lockTable) conflictLocked(k lockKey, want heldLock) (heldLock, bool) {
	for _, h := range l.mu.held[k] {
		if h.lockOwner != want.lockOwner && overlaps(h, want) &&
			(h.typ == wire.LockWrite || want.typ == wire.LockWrite) {
			return h, true
		}
	}
	return heldLock{}, false
}

func checkLock(r *wire.LockReq) error {
	if r.Kind > wire.LockFlock || r.Type > wire.LockUnlock || r.Start > r.End || r.End > wire.LockEnd {
		return wire.Errorf(wire.CodeInvalid, "lock kind %d type %d range [%d, %d] on inode %d", r.Kind, r.Type, r.Start, r.End, r.Ino)
	}
	return nil
}

// get reports the first lock that would conflict with r.
func (l *lockTable) get(r *wire.LockReq) (*wire.LockResp, error) {
	if err := checkLock(r); err != nil {
		return nil, err
	}
	want := heldLock{lockOwner{r.Session, r.Owner}, r.Type, r.Start, r.End, r.Pid}
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.Type == wire.LockUnlock {
		return &wire.LockResp{}, nil
	}
	h, ok := l.conflictLocked(lockKey{r.Ino, r.Kind}, want)
	if !ok {
		return &wire.LockResp{}, nil
	}
	return &wire.LockResp{Conflict: true, Type: h.typ, Start: h.start, End: h.end, Pid: h.pid}, nil
}

// set takes, changes or releases a lock. With r.Wait it waits, without
// polling, until the conflict is gone, ctx is done (the client gave up:
// the process waiting got a signal) or lockWaitMax passed.
func (l *lockTable) set(ctx context.Context, r *wire.LockReq) (*wire.LockResp, error) {
	if err := checkLock(r); err != nil {
		return nil, err
	}
	k := lockKey{r.Ino, r.Kind}
	want := heldLock{lockOwner{r.Session, r.Owner}, r.Type, r.Start, r.End, r.Pid}
	call := lockCall{r.Session, r.Call}
	timeout := time.NewTimer(lockWaitMax)
	defer timeout.Stop()
	if k.kind == wire.LockFlock && want.typ != wire.LockUnlock {
		// Linux converts a flock lock by dropping the old one first, so
		// a conversion that has to wait, or fails, has lost it.
		l.mu.Lock()
		for _, h := range l.mu.held[k] {
			if h.lockOwner == want.lockOwner && h.typ != want.typ {
				unlock := want
				unlock.typ = wire.LockUnlock
				l.applyLocked(k, unlock)
				break
			}
		}
		l.mu.Unlock()
	}
	for {
		l.mu.Lock()
		h, conflict := heldLock{}, false
		if want.typ != wire.LockUnlock {
			h, conflict = l.conflictLocked(k, want)
		}
		if !conflict {
			if ctx.Err() != nil {
				// Nobody is left to be told it has the lock.
				l.mu.Unlock()
				return nil, ctx.Err()
			}
			l.applyLocked(k, want)
			delete(l.mu.cancelled, call)
			l.mu.Unlock()
			return &wire.LockResp{}, nil
		}
		resp := &wire.LockResp{Conflict: true, Type: h.typ, Start: h.start, End: h.end, Pid: h.pid}
		if _, ok := l.mu.cancelled[call]; ok || !r.Wait {
			delete(l.mu.cancelled, call)
			l.mu.Unlock()
			return resp, nil
		}
		if k.kind == wire.LockPosix && l.deadlockLocked(k, want) {
			l.mu.Unlock()
			return nil, wire.Errorf(wire.CodeDeadlock, "lock on inode %d [%d, %d]", r.Ino, r.Start, r.End)
		}
		l.mu.waiting[want.lockOwner] = waitFor{k, want}
		changed := l.mu.changed
		l.mu.Unlock()
		var err error
		timedOut := false
		select {
		case <-changed:
		case <-ctx.Done():
			err = ctx.Err()
		case <-timeout.C:
			timedOut = true
		}
		l.mu.Lock()
		delete(l.mu.waiting, want.lockOwner)
		l.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if timedOut {
			return resp, nil
		}
	}
}

// deadlockLocked reports whether want's owner waiting for k would close
// a cycle: an owner holding a conflicting lock waits, directly or through
// other waiting owners, for a lock want's owner holds. As Linux, only
// POSIX locks are checked (an OFD or flock owner can wait forever).
func (l *lockTable) deadlockLocked(k lockKey, want heldLock) bool {
	seen := map[lockOwner]bool{}
	var blockers func(k lockKey, w heldLock) []lockOwner
	blockers = func(k lockKey, w heldLock) []lockOwner {
		var out []lockOwner
		for _, h := range l.mu.held[k] {
			if h.lockOwner != w.lockOwner && overlaps(h, w) && (h.typ == wire.LockWrite || w.typ == wire.LockWrite) {
				out = append(out, h.lockOwner)
			}
		}
		return out
	}
	queue := blockers(k, want)
	for len(queue) > 0 {
		o := queue[0]
		queue = queue[1:]
		if o == want.lockOwner {
			return true
		}
		if seen[o] {
			continue
		}
		seen[o] = true
		if w, ok := l.mu.waiting[o]; ok {
			queue = append(queue, blockers(w.key, w.want)...)
		}
	}
	return false
}

// applyLocked sets want's range to want's type for its owner (unlock
// removes it), splitting and merging the owner's other locks.
func (l *lockTable) applyLocked(k lockKey, want heldLock) {
	old := l.mu.held[k]
	next := make([]heldLock, 0, len(old)+2)
	released := false
	for _, h := range old {
		if h.lockOwner != want.lockOwner {
			next = append(next, h)
			continue
		}
		// Merge overlapping or adjacent locks of the same type into want
		// (end+1 cannot overflow: ends are at most LockEnd). An owner's
		// locks never overlap, so one pass finds every one to merge.
		if want.typ != wire.LockUnlock && h.typ == want.typ && h.start <= want.end+1 && want.start <= h.end+1 {
			want.start, want.end = min(want.start, h.start), max(want.end, h.end)
			continue
		}
		if !overlaps(h, want) {
			next = append(next, h)
			continue
		}
		// Keep what lies outside want's range.
		if h.start < want.start {
			head := h
			head.end = want.start - 1
			next = append(next, head)
		}
		if h.end > want.end {
			tail := h
			tail.start = want.end + 1
			next = append(next, tail)
		}
		if h.typ == wire.LockWrite || want.typ != wire.LockWrite {
			released = true // a write lock became read, or a range went
		}
	}
	if want.typ != wire.LockUnlock {
		next = append(next, want)
	}
	if len(next) == 0 {
		delete(l.mu.held, k)
	} else {
		l.mu.held[k] = next
	}
	if released {
		l.wakeLocked()
	}
}

// cancel ends the wait of r's call (r.Session, r.Call): its MSetLock
// answers at once, with the lock if it is free and a conflict if not.
// The client, whose process was interrupted, waits for that answer
// rather than drop the call, so a lock granted meanwhile is not held
// by an owner that was told it failed.
func (l *lockTable) cancel(r *wire.LockReq) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	for c, at := range l.mu.cancelled {
		if now.Sub(at) > cancelKeep {
			delete(l.mu.cancelled, c)
		}
	}
	l.mu.cancelled[lockCall{r.Session, r.Call}] = now
	l.wakeLocked()
}

func (l *lockTable) wakeLocked() {
	close(l.mu.changed)
	l.mu.changed = make(chan struct{})
}

// dropSession releases every lock the session holds.
func (l *lockTable) dropSession(session uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	dropped := false
	for k, locks := range l.mu.held {
		kept := locks[:0]
		for _, h := range locks {
			if h.session != session {
				kept = append(kept, h)
			}
		}
		if len(kept) != len(locks) {
			dropped = true
		}
		if len(kept) == 0 {
			delete(l.mu.held, k)
		} else {
			l.mu.held[k] = kept
		}
	}
	if dropped {
		l.wakeLocked()
	}
}

// count returns how many locks are held, for tests.
func (l *lockTable) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, locks := range l.mu.held {
		n += len(locks)
	}
	return n
}

// LockCount is how many file locks are held, for tests and status.
func (s *Server) LockCount() int { return s.locks.count() }
