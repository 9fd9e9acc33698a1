package client

import (
	"context"
	"syscall"

	"github.com/cairn-fs/cairn/internal/wire"
)

// A FIFO, socket or device is opened by the kernel alone: the mount
// sees no OPEN, so no File stands for it while it is open. What it does
// see is the kernel taking references to the inode (every entry it
// answers) and giving them back (FORGET), which the kernel does for an
// inode without links only once nothing has it open. So the special
// files the kernel holds count as open here: the last unlink of one
// keeps it as an orphan, as an open regular file is kept, and the last
// FORGET purges it. Without this, a FIFO still open after its name went
// (rm of a pipe in use, a rename over it) lost its inode at once, and
// fstat, fchmod or fgetxattr on it failed with ENOENT, as ext4's do not.
//
// Only special files are counted: they are few, while counting every
// inode would cost an entry per inode the kernel caches.
type heldInode struct {
	refs   uint64 // lookups the kernel has not forgotten
	orphan bool   // its last name went: purge at the last FORGET
}

// IsSpecial reports whether mode is a FIFO's, a socket's or a device's.
func IsSpecial(mode uint32) bool {
	switch mode & syscall.S_IFMT {
	case syscall.S_IFIFO, syscall.S_IFSOCK, syscall.S_IFCHR, syscall.S_IFBLK:
		return true
	}
	return false
}

// Hold counts one kernel reference to special file ino, given with an
// entry the kernel was answered.
func (c *Client) Hold(ino uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.mu.held[ino]
	if h == nil {
		h = &heldInode{}
		c.mu.held[ino] = h
	}
	h.refs++
}

// Forget gives back n kernel references to ino. At the last one a
// special file whose names are all gone is purged.
func (c *Client) Forget(ctx context.Context, ino, n uint64) error {
	c.mu.Lock()
	h := c.mu.held[ino]
	if h == nil {
		c.mu.Unlock()
		return nil
	}
	h.refs -= min(n, h.refs)
	purge := h.refs == 0 && h.orphan
	if h.refs == 0 {
		delete(c.mu.held, ino)
	}
	c.mu.Unlock()
	if !purge {
		return nil
	}
	return c.meta(ctx, wire.MPurge, &wire.InoReq{Ino: ino}, &wire.Empty{})
}

// keepHeldLocked marks held special file ino as an orphan, to be purged
// at its last FORGET; it reports false if the kernel holds no reference.
func (c *Client) keepHeldLocked(ino uint64) bool {
	h := c.mu.held[ino]
	if h != nil {
		h.orphan = true
	}
	return h != nil
}
