package fs

import (
	"sync"
	"syscall"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// pageCache decides, at each open, whether the kernel may keep the file's
// pages from earlier opens (FOPEN_KEEP_CACHE). It remembers a digest of
// each file's committed layout (its size and extents) as of the open that
// last let the kernel fill its cache; an open that fetches the same layout
// knows the content did not change, since blocks are immutable. Any other
// open drops the pages, and also the kernel's cached attributes, so that
// a file another mount grew and closed is read to its new size at once
// (close-to-open), not after the attribute timeout.
type pageCache struct {
	mu struct {
		sync.Mutex
		layouts map[uint64]block.ID // inode → digest of its layout when cached
	}
}

// maxRemembered bounds pageCache's memory; past it, it starts over (the
// cost is one dropped page cache per file).
const maxRemembered = 1 << 16

func (p *pageCache) init() { p.mu.layouts = make(map[uint64]block.ID) }

// keep reports whether the kernel's pages for ino, if any, are still the
// file's content, and remembers digest as what they are from now on.
func (p *pageCache) keep(ino uint64, digest block.ID) (keep, known bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old, known := p.mu.layouts[ino]
	if known && old == digest {
		return true, true
	}
	if len(p.mu.layouts) >= maxRemembered {
		clear(p.mu.layouts)
	}
	p.mu.layouts[ino] = digest
	return false, known
}

// forget drops what is remembered of ino: this mount changed it.
func (p *pageCache) forget(ino uint64) {
	p.mu.Lock()
	delete(p.mu.layouts, ino)
	p.mu.Unlock()
}

// Init is called by go-fuse when the mount starts; the server is kept to
// send cache invalidations and fills.
func (f *FS) Init(s *fuse.Server) {
	f.server = s
	// Random reads fill the kernel's cache with the rest of the blocks
	// they touch (client/fill.go says when that is safe).
	f.c.SetPageFiller(func(ino, off uint64, data []byte) {
		s.InodeNotifyStoreCache(ino, int64(off), data)
	})
}

// openCache sets out's flags for an open of h (on inode ino) with the
// given open flags: keep the page cache if the file did not change since
// this mount cached it. It returns the file's attributes if it fetched
// them with the layout (nil if it fetched nothing).
func (f *FS) openCache(ino uint64, h *fileHandle, flags uint32, out *fuse.OpenOut) *wire.Attr {
	if flags&syscall.O_ACCMODE == syscall.O_WRONLY || flags&syscall.O_TRUNC != 0 {
		f.pages.forget(ino)
		return nil
	}
	if _, _, dirty, _ := h.f.Dirty(); dirty {
		return nil // this mount's own writes are in the page cache already
	}
	digest, a, err := h.f.LayoutDigest(ctx())
	if err != nil {
		f.pages.forget(ino) // the read will report the error
		return nil
	}
	keep, _ := f.pages.keep(ino, digest)
	if keep {
		out.OpenFlags |= fuse.FOPEN_KEEP_CACHE
		return &a
	}
	// The kernel may hold the size from before another mount's writes:
	// make it ask again before reading.
	if f.server != nil {
		f.server.InodeNotify(ino, -1, 0)
	}
	return &a
}
