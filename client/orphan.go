package client

import (
	"context"
	"slices"

	"github.com/cairn-fs/cairn/internal/wire"
)

// keptOpen follows a remove or a rename that dropped the last name of a,
// sent with open as the inodes this mount had open. The metaserver kept a
// as an orphan if it was in open; the File purges it at its last close
// (a special file, at its last FORGET: held.go). But the last close (or
// FORGET) may have come while the call was on its way (the kernel sends
// RELEASEDIR and RELEASE asynchronously, and a metaserver restart makes
// the window seconds wide): then nobody would purge it until the session
// ends, so it is purged here.
func (c *Client) keptOpen(ctx context.Context, a wire.Attr, open []uint64) error {
	if a.Ino == 0 || a.Nlink > 0 || !slices.Contains(open, a.Ino) {
		return nil
	}
	// c.mu first, as in File.Release, so a close cannot slip in between
	// finding the File and marking it.
	c.mu.Lock()
	f := c.mu.files[a.Ino]
	if f != nil {
		f.mu.Lock()
		f.mu.orphan = true
		f.mu.Unlock()
	}
	held := f == nil && c.keepHeldLocked(a.Ino)
	c.mu.Unlock()
	if f != nil || held {
		return nil
	}
	return c.meta(ctx, wire.MPurge, &wire.InoReq{Ino: a.Ino}, &wire.Empty{})
}
