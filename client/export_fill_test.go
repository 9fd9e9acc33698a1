package client

import (
	"context"

	"github.com/cairn-fs/cairn/internal/wire"
)

// LayoutGen is the generation of f's layout, which fills carry.
func (f *File) LayoutGen() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.layoutGen
}

// TryFill offers the mount's filler the bytes data at off of f as of
// layout generation gen, as a background fetch would (fill.go).
func (f *File) TryFill(gen, off, size uint64, data []byte) {
	e := wire.Extent{Off: off, Len: uint32(len(data)), BlockLen: uint32(len(data))}
	f.fillKernel(*f.c.fill.filler.Load(), gen, e, size, data)
}

// GoBackground runs fn as the client runs its background work.
func (c *Client) GoBackground(fn func(ctx context.Context)) { c.goBackground(fn) }
