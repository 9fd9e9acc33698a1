package client

import (
	"context"

	"github.com/cairn-fs/cairn/internal/wire"
)

// setAttrOpen changes the attributes (not the size) of a file this mount
// has open. A writer that sets attributes is usually done writing
// (tar x and cp -a: write, futimens, fchown, fchmod, close), so the
// writes so far are sealed and start uploading now, while the attribute
// changes go out; the close that follows then waits only for what is
// left of the upload and for the synced commit.
//
// Setting mtime does not commit the pending writes first: their later
// commit leaves the times alone (as on ext4, a write before utimensat
// leaves the mtime utimensat set, and the ctime it set, which is later
// than the write's), so it cannot undo the change. The attribute change
// itself is one metaserver transaction, durable like any other
// namespace operation.
func (f *File) setAttrOpen(ctx context.Context, req *wire.SetAttrReq) (wire.Attr, error) {
	setsMtime := req.Valid&(wire.SetMtime|wire.SetMtimeNow) != 0
	if setsMtime {
		// A commit already under way carries the older write time: let it
		// land before the time set here, not after.
		f.flushMu.Lock()
		defer f.flushMu.Unlock()
	}
	f.mu.Lock()
	f.sealAllLocked()
	written := f.mu.mtime
	f.mu.Unlock()
	var resp wire.AttrResp
	if err := f.c.meta(ctx, wire.MSetAttr, req, &resp); err != nil {
		return wire.Attr{}, err
	}
	if setsMtime {
		f.mu.Lock()
		// The time set covers the writes pending, so their commit leaves
		// mtime and ctime as they are now (mtime 0). A write that came in
		// meanwhile is later than the time set, and keeps its own.
		if f.dirtyLocked() && f.mu.mtime == written {
			f.mu.mtime = 0
		}
		f.mu.Unlock()
	}
	f.c.overlayDirty(&resp.Attr)
	return resp.Attr, nil
}
