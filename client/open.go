package client

import (
	"context"
	"syscall"

	"github.com/cairn-fs/cairn/internal/wire"
)

// Linked checks, before an open, that inode ino still has a name, or is
// a file this client keeps open after its last unlink (a process may
// reopen it through /proc/self/fd). The kernel may open through a cached
// name whose file another mount has removed since — even one that mount
// still holds open — and must then look the name up again: Linked
// returns an error matching wire.ErrNotFound.
func (c *Client) Linked(ctx context.Context, ino uint64) error {
	a, err := c.GetAttr(ctx, ino)
	if err != nil {
		return err
	}
	if a.Nlink == 0 && a.Mode&syscall.S_IFMT == syscall.S_IFREG && c.openFile(ino) == nil {
		return wire.Errorf(wire.CodeNotFound, "inode %d has no name left", ino)
	}
	return nil
}
