package client

import (
	"context"
	"syscall"

	"github.com/cairn-fs/cairn/internal/wire"
)

// Linked checks, at an open, that inode ino still has a name, or is a
// file this client kept open after its last unlink (a process may reopen
// it through /proc/self/fd). The kernel may open through a cached name
// whose file another mount has removed since — even one that mount still
// holds open — and must then look the name up again: Linked returns an
// error matching wire.ErrNotFound. known is ino's attributes if the open
// fetched them already (nil: Linked asks), and wasOpen whether this
// client had ino open before the open.
func (c *Client) Linked(ctx context.Context, ino uint64, known *wire.Attr, wasOpen bool) error {
	a := known
	if a == nil {
		got, err := c.GetAttr(ctx, ino)
		if err != nil {
			return err
		}
		a = &got
	}
	if a.Nlink == 0 && a.Mode&syscall.S_IFMT == syscall.S_IFREG && !wasOpen {
		return wire.Errorf(wire.CodeNotFound, "inode %d has no name left", ino)
	}
	return nil
}

// IsOpen reports whether this client has inode ino open.
func (c *Client) IsOpen(ino uint64) bool { return c.openFile(ino) != nil }
