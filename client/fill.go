package client

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/cairn-fs/cairn/internal/wire"
)

// A random read fetches only the verified slice it needs, so that it
// answers quickly; then, in the background, the aligned MiB around it
// (warmUnit) is fetched into the block cache and, through the mount's
// PageFiller, into the kernel's page cache, so that later reads there
// never reach cairn: a file read at random all over ends up wholly in
// the kernel's cache, as on a local disk, instead of 4 KiB at a time.
//
// Filling the kernel's cache must never put there bytes that are not the
// file's content as this mount sees it, nor grow the kernel's idea of the
// file's size (FUSE_NOTIFY_STORE extends i_size when it stores past it).
// A fill therefore carries the layout generation its bytes come from, and
// stores only while, checked under fillMu (held shared for the whole
// store):
//   - that generation is still current: anything that changes what this
//     mount reads (open, truncate, fallocate, a lock that catches up, the
//     last release) bumps it and then waits for the fills in flight
//     (awaitFills) before it answers the kernel, which may drop or cut
//     the page cache only after that answer (a commit bumps it too, but
//     commits follow writes, which already stopped fills);
//   - no handle on this mount may write (writers): a write-through write
//     holds its pages locked while the WRITE is in flight, and a fill that
//     waited for such a page would overwrite the new bytes with old ones;
//     a writable open waits for fills in flight before it is answered;
//   - nothing is uncommitted (the pages hold it; the layout does not);
//   - the File is still the mount's open state of the inode (a File whose
//     last reference went no longer sees invalidations).
// Fills stop at the layout's size and at whole pages inside the extent,
// except at the end of the file, where the kernel zeroes the page's tail.
// This relies on write-through FUSE writes (no writeback cache): with a
// writeback cache, dirty pages could outlive the writers' handles.
//
// A file that keeps being read at random is warmed whole (warmWhole):
// once enough random reads reached cairn, every block of the layout is
// fetched in file order, the ones the block cache holds first, and
// stored in the kernel's cache, under the same checks. Sequential fetches
// are what cairn does fast, so the file is cached in seconds rather than
// a MiB per miss. Only files up to Config.WarmFileBytes are (an eighth of
// the machine's memory by default), one file at a time per mount, with
// wholeFetches blocks in flight: cairn's own memory grows by at most
// those, and the kernel's page cache by the file, which it may evict. If
// it does (memory pressure, or fadvise(DONTNEED), which fio issues at
// the end of each pass over the file), the random reads reach cairn again
// and, once enough have, warm the whole file again: with a disk cache
// (diskcache.go), from local disk rather than over the network.
//
// Another mount's commit does not stop fills: like this mount's own reads
// until the next open, they carry the layout this open fetched; the next
// open bumps the generation and waits for them before the kernel decides
// whether to keep its pages (fs/cache.go).

// PageFiller stores data, the content of file ino at off, in the kernel's
// page cache.
type PageFiller func(ino uint64, off uint64, data []byte)

// pageSize is the kernel's page size for the purpose of fills: partial
// pages are left out, since the kernel would not mark them up to date.
const pageSize = 4096

// maxWarming bounds the fetches that random reads start in the
// background. Each one delays the reads' own slices behind it on the
// connection, but it is how fast the file gets into the kernel's cache
// that decides: with fio's 4 random readers over 1 GiB (load ~6 on this
// 2-core machine), 1 at a time filled 380 MiB in 10 s, 2 filled 1 GiB in
// 10 s, 4 (or 8) in 6 s, for 97k IOPS against 3k with 2. (With the
// machine overloaded, load 15-25, no setting fills 1 GiB in 10 s, and
// the reads are slower than without warming: 400-1,000 IOPS against
// 2,000; over 30 s warming wins there too, 32k against 1.4k.)
const maxWarming = 4

// wholeFetches is how many blocks a file warmed whole has on their way
// at once.
const wholeFetches = 2

// fillState is the client's side of background block fetches.
type fillState struct {
	filler  atomic.Pointer[PageFiller]
	warming chan struct{} // semaphore: one token per background fetch of a part
	whole   chan struct{} // semaphore: the one file being warmed whole
}

// SetPageFiller makes random reads fill the kernel's page cache through
// fn with the rest of each block they touch.
func (c *Client) SetPageFiller(fn PageFiller) { c.fill.filler.Store(&fn) }

// AddWriter notes a handle that may write the file (open for writing or
// truncating); fills stop until DropWriter. It returns once the fills in
// flight are done, so it must run before the open is answered.
func (f *File) AddWriter() {
	f.mu.Lock()
	f.mu.writers++
	f.mu.Unlock()
	f.awaitFills()
}

// DropWriter undoes AddWriter, after the handle's last flush.
func (f *File) DropWriter() {
	f.mu.Lock()
	f.mu.writers--
	f.mu.Unlock()
}

// awaitFills waits until the fills that passed their checks are done.
// Call it with no lock held, after bumping layoutGen.
func (f *File) awaitFills() {
	f.fillMu.Lock()
	f.fillMu.Unlock() //nolint:staticcheck // a barrier, not a critical section
}

// warmUnit is how much of a block a random read warms: the aligned
// part around it, fetched as one verified slice. Smaller than a block so
// that a background fetch holds the connection only briefly ahead of the
// next read's own small slice.
const warmUnit = 1 << 20

// warm starts, after a random read at file offset off in extent e of
// layout (of generation gen), the background fetches that bring the
// file into the kernel's cache: of the whole file if it is read at
// random enough, else of the part around off.
func (f *File) warm(gen uint64, layout *wire.ExtentsResp, e wire.Extent, off uint64) {
	filler := f.c.fill.filler.Load()
	if filler != nil && f.warmWhole(*filler, gen, layout) {
		return
	}
	f.warmPart(filler, gen, e, off, layout.Size)
}

// warmWhole counts a random read that reached cairn and, once enough did
// since the file was last warmed whole (wholeAfter), starts warming it
// whole. It reports whether the file is being warmed whole, which makes
// warming its parts pointless.
func (f *File) warmWhole(filler PageFiller, gen uint64, layout *wire.ExtentsResp) bool {
	if limit := f.c.cfg.WarmFileBytes; limit < 0 || layout.Size > uint64(limit) {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mu.wholeGen == gen {
		return true
	}
	f.mu.misses++
	if f.mu.layoutGen != gen || f.mu.misses < wholeAfter(layout.Size) {
		return false
	}
	select {
	case f.c.fill.whole <- struct{}{}:
	default:
		return false // another file is being warmed; its parts are warmed meanwhile
	}
	f.mu.wholeGen = gen
	f.c.goBackground(func(context.Context) { // each fetch has its own time (fillWhole)
		f.fillWhole(filler, gen, layout)
		<-f.c.fill.whole
		f.mu.Lock()
		if f.mu.wholeGen == gen {
			// Misses from now on are pages the kernel lost since.
			f.mu.wholeGen, f.mu.misses = 0, 0
		}
		f.mu.Unlock()
	})
	return true
}

// wholeAfter is how many random reads must reach cairn, since an open or
// since the file was last warmed whole, before a file of the given size is
// warmed whole: a few, and more for a larger file (one per 16 MiB), so
// that the few pages the kernel drops of a file it mostly keeps cost
// their parts, not the whole file again.
func wholeAfter(size uint64) int {
	return max(8, int(size/(16*warmUnit)))
}

// fillWhole fetches every block of layout and stores its extents in the
// kernel's cache: first those whose blocks the block cache holds, then the
// others in file order, wholeFetches at a time. It stops when fills of gen
// may no longer store, or at a failed fetch (the reads will report it).
func (f *File) fillWhole(filler PageFiller, gen uint64, layout *wire.ExtentsResp) {
	slots := make(chan struct{}, wholeFetches)
	var wg sync.WaitGroup
	var failed atomic.Bool
	for _, e := range f.c.cachedFirst(layout.Extents) {
		slots <- struct{}{}
		if failed.Load() || !f.fillable(gen) {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			ctx, cancel := f.c.backgroundCtx()
			data, err := f.c.getBlock(ctx, e.Block)
			cancel()
			if err != nil || uint64(len(data)) < uint64(e.BlockOff)+uint64(e.Len) {
				failed.Store(true)
				return
			}
			f.fillKernel(filler, gen, e, layout.Size, data[e.BlockOff:e.BlockOff+e.Len])
		}()
	}
	wg.Wait()
}

// cachedFirst returns exts reordered: those whose blocks are in the block
// cache first, then the others, each in file order.
func (c *Client) cachedFirst(exts []wire.Extent) []wire.Extent {
	cached := make([]wire.Extent, 0, len(exts))
	var others []wire.Extent
	for _, e := range exts {
		if _, ok := c.cache.get(e.Block); ok {
			cached = append(cached, e)
		} else {
			others = append(others, e)
		}
	}
	return append(cached, others...)
}

// warmPart fetches, in the background after a read at file offset off in
// extent e (of the layout of generation gen), the aligned warmUnit of the
// extent around off into the block cache, and fills the kernel's cache
// with it. A part is warmed by one fetch at a time, and again at a later
// miss there (the kernel evicted the pages, or could not take them).
func (f *File) warmPart(filler *PageFiller, gen uint64, e wire.Extent, off, size uint64) {
	lo := max(e.Off, off&^(warmUnit-1))
	hi := min(e.End(), off&^(warmUnit-1)+warmUnit)
	part := wire.Extent{Off: lo, Len: uint32(hi - lo), Block: e.Block, BlockOff: e.BlockOff + uint32(lo-e.Off), BlockLen: e.BlockLen}
	if filler == nil {
		if _, ok := f.c.cache.get(e.Block); ok {
			return
		}
	}
	f.mu.Lock()
	if f.mu.layoutGen != gen || f.mu.warming[lo] {
		f.mu.Unlock()
		return
	}
	select {
	case f.c.fill.warming <- struct{}{}:
	default:
		f.mu.Unlock()
		return // busy: a later read there tries again
	}
	if f.mu.warming == nil {
		f.mu.warming = make(map[uint64]bool)
	}
	f.mu.warming[lo] = true
	f.mu.Unlock()
	f.c.goBackground(func(ctx context.Context) {
		data, err := f.c.getRange(ctx, part.Block, uint64(part.BlockLen), uint64(part.BlockOff), uint64(part.Len))
		<-f.c.fill.warming
		if err == nil && filler != nil {
			f.fillKernel(*filler, gen, part, size, data)
		}
		f.mu.Lock()
		if f.mu.layoutGen == gen {
			delete(f.mu.warming, lo)
		}
		f.mu.Unlock()
	})
}

// fillKernel stores data, the content of extent e, in the kernel's page
// cache if the checks above allow it.
func (f *File) fillKernel(filler PageFiller, gen uint64, e wire.Extent, size uint64, data []byte) {
	lo := (e.Off + pageSize - 1) &^ (pageSize - 1)
	hi := min(e.End(), size)
	if hi < size {
		hi &^= pageSize - 1
	}
	if lo >= hi {
		return
	}
	f.fillMu.RLock()
	defer f.fillMu.RUnlock()
	if !f.fillable(gen) {
		return
	}
	filler(f.ino, lo, data[lo-e.Off:hi-e.Off])
}

// fillable reports whether fills of layout generation gen may store in
// the kernel's cache now (the checks at the top of this file).
func (f *File) fillable(gen uint64) bool {
	live := f.c.openFile(f.ino) == f
	f.mu.Lock()
	defer f.mu.Unlock()
	return live && f.mu.layoutGen == gen && f.mu.writers == 0 && !f.dirtyLocked()
}
