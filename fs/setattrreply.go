package fs

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-fs/cairn/internal/wire"
)

// setAttrReply keeps the attributes this mount's last SETATTR, or
// commit at close or fsync, was answered with, to answer the next
// GETATTR of the same inode:
//   - the one the kernel sends before a chown: without
//     FUSE_HANDLE_KILLPRIV it refreshes the mode first, to know which
//     set-id bits the chown clears. tar x sets each file's times, owner
//     and mode one after the other, so without this every file
//     extracted would cost one more round trip;
//   - the one after a close, when a file just written is looked at (an
//     editor, or a program that writes a file and then stats it): the
//     kernel drops a file's size and times after every write. (git
//     checkout stats each file before its close, while it still has
//     writes to commit; that GETATTR still asks the metaserver.)
//
// The kept attributes answer one GETATTR, within the attribute timeout,
// and only if no request that may change attributes (of any inode: an
// unlink changes the link count of a file it does not name by inode)
// began or ended on this mount since the SETATTR began: the answer is
// then the one the metaserver would give, up to what another mount did
// meanwhile, the staleness the kernel accepts for what it caches. An
// open counts as such a request: it must show what other mounts
// committed (close-to-open).
type setAttrReply struct {
	changes atomic.Uint64 // requests that may change attributes, counted at start and end

	mu struct {
		sync.Mutex
		at      uint64 // changes when the kept SETATTR began
		attr    wire.Attr
		expires time.Time // zero: nothing kept
	}
}

// changing notes a request that may change attributes; call what it
// returns when the request is done.
func (r *setAttrReply) changing() func() {
	r.changes.Add(1)
	return func() { r.changes.Add(1) }
}

// begin notes a SETATTR starting; pass what it returns to end.
func (r *setAttrReply) begin() uint64 { return r.changes.Add(1) }

// end keeps a, the attributes the SETATTR begun at was answered with
// (Ino 0 after an error), for ttl if nothing else changed meanwhile.
func (r *setAttrReply) end(at uint64, a wire.Attr, ttl time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a.Ino == 0 || r.changes.Load() != at {
		// Not kept, so this SETATTR's end counts as a change: a SETATTR
		// that overlapped it must not be kept either.
		r.changes.Add(1)
		r.mu.expires = time.Time{}
		return
	}
	r.mu.at, r.mu.attr, r.mu.expires = at, a, time.Now().Add(ttl)
}

// take returns ino's kept attributes if they may still answer, and
// forgets them.
func (r *setAttrReply) take(ino uint64) (wire.Attr, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.attr.Ino != ino || r.changes.Load() != r.mu.at || !time.Now().Before(r.mu.expires) {
		return wire.Attr{}, false
	}
	r.mu.expires = time.Time{}
	return r.mu.attr, true
}
