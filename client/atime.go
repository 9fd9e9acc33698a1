package client

import (
	"context"
	"time"

	"github.com/cairn-fs/cairn/internal/wire"
)

// reportRead tells the metaserver that this mount reads the file, once
// per open (and again after a change), so that it applies relatime to
// its atime. Only a read does: an open, a layout fetched for the page
// cache or lseek, a truncate or a write leave atime alone, as on ext4.
// A failure is logged and does not fail the read.
func (f *File) reportRead(ctx context.Context) {
	f.mu.Lock()
	done := f.mu.accessed
	f.mu.accessed = true
	// The attributes fetched with the layout tell whether the rule would
	// move atime at all; usually it would not, and no call is needed.
	done = done || f.mu.layout != nil && !wire.NeedsAtime(&f.mu.layout.Attr, time.Now().UnixNano())
	f.mu.Unlock()
	if done {
		return
	}
	if err := f.c.meta(ctx, wire.MAccessed, &wire.InoReq{Ino: f.ino}, &wire.Empty{}); err != nil {
		f.c.cfg.Log.Warn("atime not updated", "ino", f.ino, "err", err)
	}
}
