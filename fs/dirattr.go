package fs

import (
	"sync"
	"time"

	"github.com/cairn-fs/cairn/internal/wire"
)

// dirAttrs keeps the attributes of directories as the metaserver
// returned them with this mount's own changes in them (create, link,
// unlink, rename) or after a listing (which may move the atime). The
// kernel drops a directory's cached attributes after every such change
// (and its atime after every listing) and asks for them again before its
// next permission check or stat, so without this each would cost a
// second round trip.
//
// An entry answers one GETATTR and only within the attribute timeout
// from when it arrived, the staleness the kernel itself accepts for any
// attribute it caches. It is kept only when the change that brought it
// was this mount's only one in flight in that directory from start to
// end: concurrent changes may be answered in any order, and an older
// answer must not stand for a newer change.
//
// Entries kept for a GETATTR that never comes (the kernel asks only when
// it needs the attributes) are swept once there are maxDirAttrs.
type dirAttrs struct {
	mu struct {
		sync.Mutex
		dirs map[uint64]*dirAttr
	}
}

// maxDirAttrs bounds the directories kept; a sweep drops every one with
// no change in flight (at most one round trip each is lost).
const maxDirAttrs = 4096

type dirAttr struct {
	inflight int    // changes of this mount in the directory not yet answered
	epoch    uint64 // counts the changes begun, to see whether one overlapped
	overlap  bool   // a change began while another was in flight
	attr     wire.Attr
	expires  time.Time // zero: no attributes to answer with
}

// begin notes a change starting in dir; pass what it returns to end.
func (c *dirAttrs) begin(dir uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.dirs == nil {
		c.mu.dirs = make(map[uint64]*dirAttr)
	}
	d := c.mu.dirs[dir]
	if d == nil {
		d = &dirAttr{}
		c.mu.dirs[dir] = d
	}
	if d.inflight > 0 {
		d.overlap = true
	}
	d.inflight++
	d.epoch++
	d.expires = time.Time{} // the change makes what is kept stale
	return d.epoch
}

// end notes the change begun at epoch as answered, with the directory's
// attributes a (Ino 0 if none came, as after an error), kept for ttl.
func (c *dirAttrs) end(dir, epoch uint64, a wire.Attr, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.mu.dirs[dir]
	d.inflight--
	if d.inflight == 0 && d.epoch == epoch && !d.overlap && a.Ino == dir && ttl > 0 {
		d.attr, d.expires = a, time.Now().Add(ttl)
		if len(c.mu.dirs) > maxDirAttrs {
			c.sweepLocked(dir)
		}
		return
	}
	d.expires = time.Time{}
	if d.inflight == 0 {
		delete(c.mu.dirs, dir)
	}
}

// take returns dir's kept attributes if they are still fresh, and
// forgets them: they answer one GETATTR, the one the change caused.
func (c *dirAttrs) take(dir uint64) (wire.Attr, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.mu.dirs[dir]
	if d == nil || d.inflight > 0 {
		return wire.Attr{}, false
	}
	delete(c.mu.dirs, dir)
	return d.attr, time.Now().Before(d.expires)
}

// forget drops what is kept for ino, after a change to it that the
// kept attributes do not show (setattr, xattrs).
func (c *dirAttrs) forget(ino uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := c.mu.dirs[ino]; d != nil {
		d.expires = time.Time{}
		d.epoch++ // an answer still in flight predates this change
	}
}

// sweepLocked drops every directory but keep that has no change in
// flight: those with changes in flight are at most as many as the
// requests being served.
func (c *dirAttrs) sweepLocked(keep uint64) {
	for ino, d := range c.mu.dirs {
		if d.inflight == 0 && ino != keep {
			delete(c.mu.dirs, ino)
		}
	}
}
