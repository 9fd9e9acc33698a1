package fs

import (
	"log/slog"
	"time"

	"github.com/cairn-fs/cairn/client"
)

// NewUnmounted is the file system a mount serves, without the mount, for
// calling its FUSE methods directly (as with an interrupted request).
func NewUnmounted(c *client.Client, log *slog.Logger) *FS {
	return newFS(c, log, time.Second)
}
