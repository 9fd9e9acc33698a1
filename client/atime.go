package client

import (
	"context"

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
	f.mu.Unlock()
	if done {
		return
	}
	if err := f.c.meta(ctx, wire.MAccessed, &wire.InoReq{Ino: f.ino}, &wire.Empty{}); err != nil {
		f.c.cfg.Log.Warn("atime not updated", "ino", f.ino, "err", err)
	}
}
