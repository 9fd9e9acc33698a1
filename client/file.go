package client

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/wire"
)

// File is the state one mount keeps for an open regular file, shared by
// every handle on it: the committed layout as last fetched, and the
// writes not yet committed, in order. Reads overlay the uncommitted
// writes on the layout, so the mount sees its own writes at once.
type File struct {
	c   *Client
	ino uint64

	flushMu sync.Mutex   // serializes Flush, so commits go out in write order
	fillMu  sync.RWMutex // held shared by fills of the kernel's page cache (fill.go)

	mu struct {
		sync.Mutex
		refs     int
		orphan   bool              // unlinked while open: purge at the last Release
		layout   *wire.ExtentsResp // committed layout; nil: fetch before reading
		accessed bool              // reads through this open were reported for atime (atime.go); reset with layout
		dirtyEnd uint64            // end of the furthest uncommitted write
		size     uint64            // size as this mount sees it, valid when layout != nil or dirty
		mtime    int64             // time of the last uncommitted write; 0 if none, or if a SETATTR set the times since (setattr.go)
		buf      []byte            // the block being filled, not yet sealed
		bufOff   uint64            // file offset of buf[0]
		pack     *pendingBlock     // small scattered writes gathered into one block, not yet sealed
		pending  []*pendingBlock   // sealed blocks, uploading or uploaded, not yet committed
		lastRead int               // index of the extent the last read ended in, for readahead
		readEnd  uint64            // where the last read ended, to tell sequential reads from random ones
		seqReads int               // reads in a row that followed the one before
		writers  int               // handles that may write: no kernel cache fills (fill.go)
		warming  map[uint64]bool   // parts of the layout being warmed, by offset (fill.go); reset with layout
		misses   int               // random reads that reached cairn since the layout, or the last whole warm (fill.go)
		wholeGen uint64            // the layout generation being warmed whole, if any (fill.go)

		// layoutGen counts invalidations of layout, so that a fetch that
		// a commit overtook is not installed (dropLayoutLocked).
		layoutGen uint64
		// floor is the size this mount's last commit (or truncate) gave
		// the file: attributes fetched while a commit was landing can be
		// older than it, and must not shrink the kernel's size (which
		// would drop cached and mapped pages). See overlayDirty.
		floor uint64
		// known is the mtime of the cluster's copy that this mount's
		// caches reflect, from its own commits or a lock (lock.go).
		known int64
	}
}

// seqWindow is how far from where the last read ended a read still
// follows it (the kernel's parallel readahead reorders reads). A reader
// whose last two reads followed their predecessors is sequential.
const seqWindow = 512 << 10

// smallBlock is the block size up to which a read fetches the whole block
// rather than a slice of it.
const smallBlock = 4 * block.SliceGroup

// bigWrite is the write size from which a new block buffer is allocated
// at full size at once; smaller files grow theirs as they are written.
const bigWrite = 64 << 10

// pendingBlock is a sealed write: its bytes stay in memory until the
// extents that name them are committed. A plain block holds one run of
// the file at off; a pack holds many small writes end to end, listed in
// runs in the order they were written.
type pendingBlock struct {
	f    *File // whose mu guards data
	off  uint64
	data []byte        // nil once uploaded (guarded by File.mu): the chunkservers and the cache have it
	size uint32        // len(data) when sealed
	runs []packRun     // nil for a plain block
	id   block.ID      // set before data is dropped
	done chan struct{} // closed when the upload finished; err says how
	err  error
	at   time.Time // when the upload started (see keepUploads)
}

// packRun is one write gathered into a pack: file range [off, off+n) is
// bytes [at, at+n) of the pack.
type packRun struct {
	off   uint64
	at, n uint32
}

// maxCommitExtents is how many extents one commit carries, well inside
// wire.MaxMessage.
const maxCommitExtents = 50_000

// packable is the largest run of writes that goes into a pack when the
// writer moves elsewhere, instead of becoming a block of its own: random
// 4 KiB writes then cost one replicated block per 4 MiB, not per write.
const packable = 128 << 10

// overlayTo copies the bytes of p (whose content is data) that fall
// inside dst (at file offset dstOff), later runs of a pack over earlier
// ones.
func (p *pendingBlock) overlayTo(dst []byte, dstOff uint64, data []byte) {
	if p.runs == nil {
		overlay(dst, dstOff, data, p.off)
		return
	}
	for _, r := range p.runs {
		overlay(dst, dstOff, data[r.at:r.at+r.n], r.off)
	}
}

// covers reports whether p holds bytes of the file range [off, end).
func (p *pendingBlock) covers(off, end uint64) bool {
	if p.runs == nil {
		return p.off < end && p.off+uint64(p.size) > off
	}
	for _, r := range p.runs {
		if r.off < end && r.off+uint64(r.n) > off {
			return true
		}
	}
	return false
}

// extents returns the extents that name p's bytes, in write order.
func (p *pendingBlock) extents() []wire.Extent {
	if p.runs == nil {
		return []wire.Extent{{Off: p.off, Len: p.size, Block: p.id, BlockLen: p.size}}
	}
	es := make([]wire.Extent, len(p.runs))
	for i, r := range p.runs {
		es[i] = wire.Extent{Off: r.off, Len: r.n, Block: p.id, BlockOff: r.at, BlockLen: p.size}
	}
	return es
}

// Open returns the mount's state for inode ino, taking a reference that
// Release drops. Opening drops the cached layout, so data another mount
// committed before this open is seen (close-to-open). A mount opens
// directories too, so that one removed while open is kept (see
// wire.RemoveReq.Open) until its last Release.
func (c *Client) Open(ino uint64) *File {
	c.mu.Lock()
	f := c.mu.files[ino]
	if f == nil {
		f = &File{c: c, ino: ino}
		c.mu.files[ino] = f
	}
	// The reference is taken under c.mu, as Release drops the last one:
	// else a Release racing with this Open (the kernel sends RELEASE
	// asynchronously) could drop the File from c.mu.files just before
	// this reference, and the open file would be unknown to the mount.
	f.mu.Lock()
	c.mu.Unlock()
	f.mu.refs++
	if !f.dirtyLocked() {
		f.dropLayoutLocked()
	}
	f.mu.Unlock()
	f.awaitFills()
	return f
}

// Ino is the inode the File is of.
func (f *File) Ino() uint64 { return f.ino }

// Release drops a reference taken by Open. The caller has flushed. The
// last release of a file that was unlinked while open deletes it.
func (f *File) Release(ctx context.Context) error {
	f.mu.Lock()
	if f.mu.refs == 1 && !f.dirtyLocked() {
		// The File may be dropped: fills through it must be over before
		// a new open (of a new File) lets the kernel keep or drop pages.
		f.dropLayoutLocked()
	}
	f.mu.Unlock()
	f.awaitFills()
	f.c.mu.Lock()
	f.mu.Lock()
	f.mu.refs--
	last := f.mu.refs == 0 && !f.dirtyLocked()
	if last {
		delete(f.c.mu.files, f.ino)
	}
	purge := last && f.mu.orphan
	f.mu.Unlock()
	f.c.mu.Unlock()
	if purge {
		return f.c.meta(ctx, wire.MPurge, &wire.InoReq{Ino: f.ino}, &wire.Empty{})
	}
	return nil
}

// openInos lists the inodes this mount has open (and the special files
// the kernel holds, held.go), so that an unlink of their last name keeps
// them until they are closed.
func (c *Client) openInos() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	inos := make([]uint64, 0, len(c.mu.files)+len(c.mu.held))
	for ino := range c.mu.files {
		inos = append(inos, ino)
	}
	for ino := range c.mu.held {
		inos = append(inos, ino)
	}
	return inos
}

func (f *File) dirtyLocked() bool {
	return len(f.mu.buf) > 0 || len(f.mu.pending) > 0 || f.mu.pack != nil
}

// openFile returns the open File for ino, if any.
func (c *Client) openFile(ino uint64) *File {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.files[ino]
}

// Write buffers data at off. Full blocks are sealed and uploaded in the
// background while the caller keeps writing; at most MaxInflight blocks
// are in flight, which bounds the memory a writer pins.
func (f *File) Write(off uint64, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	end := off + uint64(len(data))
	for len(data) > 0 {
		b := &f.mu.buf
		if len(*b) == 0 || off < f.mu.bufOff || off > f.mu.bufOff+uint64(len(*b)) || off >= f.mu.bufOff+block.MaxSize {
			// Not a continuation of (or overwrite inside) the open block.
			f.retireBufLocked()
			f.mu.bufOff = off
		}
		start := off - f.mu.bufOff
		n := min(uint64(len(data)), block.MaxSize-start)
		if *b == nil && n >= bigWrite {
			// A large writer will fill the block: allocate it whole
			// rather than grow it by copying.
			*b = make([]byte, 0, block.MaxSize)
		}
		if grow := int(start+n) - len(*b); grow > 0 {
			*b = slices.Grow(*b, grow)[:start+n]
		}
		copy((*b)[start:], data[:n])
		off += n
		data = data[n:]
		if len(*b) == block.MaxSize {
			f.sealLocked()
		}
	}
	f.mu.dirtyEnd = max(f.mu.dirtyEnd, end)
	f.mu.size = max(f.mu.size, end)
	f.mu.mtime = time.Now().UnixNano()
}

// retireBufLocked moves the open buffer out of the way of a write
// elsewhere: a small one into the pack, a large one into its own block.
func (f *File) retireBufLocked() {
	n := len(f.mu.buf)
	if n == 0 || n > packable {
		f.sealLocked()
		return
	}
	if f.mu.pack != nil && len(f.mu.pack.data)+n > block.MaxSize {
		f.sealPackLocked()
	}
	if f.mu.pack == nil {
		f.mu.pack = &pendingBlock{f: f, runs: []packRun{}, done: make(chan struct{})}
	}
	p := f.mu.pack
	// Appending never changes bytes already in the pack, so a reader's
	// snapshot of data and runs stays valid.
	p.runs = append(p.runs, packRun{off: f.mu.bufOff, at: uint32(len(p.data)), n: uint32(n)})
	p.data = append(p.data, f.mu.buf...)
	f.mu.buf = f.mu.buf[:0]
}

// sealLocked turns the open buffer into a pending block and starts its
// upload, waiting for an upload slot if MaxInflight are already going.
// The pack is sealed first: its writes are older and must commit before.
func (f *File) sealLocked() {
	if len(f.mu.buf) == 0 {
		return
	}
	f.sealPackLocked()
	p := &pendingBlock{f: f, off: f.mu.bufOff, data: f.mu.buf, done: make(chan struct{})}
	f.mu.buf = nil
	f.startUploadLocked(p)
}

// sealAllLocked seals every write so far into pending blocks, uploading.
func (f *File) sealAllLocked() {
	if f.mu.pack != nil {
		f.retireBufLocked() // one block with the pack, not two
	}
	f.sealLocked()
	f.sealPackLocked()
}

// sealPackLocked seals the pack of small writes, if any, and uploads it.
func (f *File) sealPackLocked() {
	if p := f.mu.pack; p != nil {
		f.mu.pack = nil
		f.startUploadLocked(p)
	}
}

func (f *File) startUploadLocked(p *pendingBlock) {
	p.size = uint32(len(p.data))
	f.mu.pending = append(f.mu.pending, p)
	f.c.upload <- struct{}{}
	f.c.goBackground(func(ctx context.Context) {
		// A big block written is kept in the disk cache too: a file
		// written is often read back soon (a build's output, a copy, a
		// benchmark), and the read then costs a local read instead of
		// the network.
		var outboard []byte
		if f.c.disk.wants(len(p.data)) {
			p.id, outboard = block.SumOutboard(p.data)
		} else {
			p.id = block.Sum(p.data)
		}
		p.at = time.Now() // its first copy may land at once, however long the rest take
		p.err = f.c.putBlock(ctx, p.id, p.data)
		if p.err == nil {
			f.c.cache.add(p.id, p.data)
			f.c.disk.put(p.id, p.data, outboard)
		}
		// Free the slot before taking f.mu: a writer may hold f.mu while
		// it waits for a slot.
		<-f.c.upload
		// Stored: the bytes need not stay pinned until the commit, so a
		// long write without fsync holds at most MaxInflight blocks in
		// memory, not the whole file. (A failed block keeps them until the
		// flush reports the failure.)
		if p.err == nil {
			f.mu.Lock()
			p.data = nil
			f.mu.Unlock()
		}
		close(p.done)
	})
}

// Flush makes every write so far durable and visible to other mounts:
// it waits for the uploads and commits their extents in one synced
// metaserver transaction.
func (f *File) Flush(ctx context.Context) error {
	_, err := f.FlushAttr(ctx)
	return err
}

// FlushAttr is Flush, and returns the attributes the commit gave the
// file, with this mount's writes since shown in them (as GetAttr shows
// them); Ino is 0 when there was nothing to commit or the flush failed.
func (f *File) FlushAttr(ctx context.Context) (wire.Attr, error) {
	f.flushMu.Lock()
	defer f.flushMu.Unlock()
	f.mu.Lock()
	f.sealAllLocked()
	batch := f.mu.pending
	mtime := f.mu.mtime
	f.mu.Unlock()
	if len(batch) == 0 {
		return wire.Attr{}, nil
	}
	var firstErr error
	extents := make([]wire.Extent, 0, len(batch))
	for _, p := range batch {
		<-p.done
		if p.err != nil && firstErr == nil {
			firstErr = p.err
		}
		extents = append(extents, p.extents()...)
	}
	if firstErr == nil {
		firstErr = f.c.keepUploads(ctx, batch)
	}
	// Many small writes can name more extents than one message carries:
	// commit them in order, in parts; the flush succeeds when all did.
	var resp wire.AttrResp
	for len(extents) > 0 && firstErr == nil {
		part := extents[:min(len(extents), maxCommitExtents)]
		extents = extents[len(part):]
		firstErr = f.c.meta(ctx, wire.MCommit, &wire.CommitReq{Ino: f.ino, Extents: part, Mtime: mtime}, &resp)
	}
	f.mu.Lock()
	if firstErr == nil {
		f.mu.floor = max(f.mu.floor, resp.Attr.Size)
		f.mu.known = resp.Attr.Mtime
	}
	// The batch is done with, committed or failed: a failed write is
	// reported here, to the flush (close/fsync) that asked for it, and
	// not kept to fail every later flush too.
	f.mu.pending = f.mu.pending[len(batch):]
	f.dropLayoutLocked()
	if !f.dirtyLocked() {
		f.mu.dirtyEnd, f.mu.mtime = 0, 0
	}
	f.mu.Unlock()
	if firstErr != nil {
		return wire.Attr{}, firstErr
	}
	f.c.overlayDirty(&resp.Attr)
	return resp.Attr, nil
}

// Dirty reports the size and mtime this mount's uncommitted writes give
// the file (mtime 0 if they have none of their own: setattr.go); ok is
// false when there are none. floor is the size the
// mount's own last commit or truncate gave the file.
func (f *File) Dirty() (size uint64, mtime int64, ok bool, floor uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.dirtyLocked() {
		return 0, 0, false, f.mu.floor
	}
	return f.mu.size, f.mu.mtime, true, f.mu.floor
}

// dirtyBytes is how many bytes this mount's uncommitted writes hold. An
// overwrite counts again what it replaces, until its commit.
func (f *File) dirtyBytes() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := uint64(len(f.mu.buf))
	if f.mu.pack != nil {
		n += uint64(len(f.mu.pack.data))
	}
	for _, p := range f.mu.pending {
		n += uint64(p.size)
	}
	return n
}

// dropLayoutLocked forgets the cached layout; the next read fetches it.
func (f *File) dropLayoutLocked() {
	f.mu.layout = nil
	f.mu.layoutGen++
	f.mu.accessed = false
	f.mu.warming = nil
	f.mu.misses = 0
}

// loadLayout fetches the committed layout if it is not cached. A layout
// fetched while a commit of this mount landed may predate the commit; it
// is not installed (the pending writes it lacks are gone by then), and
// the fetch is repeated.
func (f *File) loadLayout(ctx context.Context) error {
	for {
		f.mu.Lock()
		have, gen := f.mu.layout != nil, f.mu.layoutGen
		f.mu.Unlock()
		if have {
			return nil
		}
		var resp wire.ExtentsResp
		if err := f.c.meta(ctx, wire.MExtents, &wire.InoReq{Ino: f.ino}, &resp); err != nil {
			return err
		}
		f.mu.Lock()
		if f.mu.layoutGen == gen {
			f.mu.layout = &resp
			f.mu.size = max(resp.Size, f.mu.dirtyEnd)
			f.mu.Unlock()
			return nil
		}
		f.mu.Unlock()
	}
}

// LayoutDigest fetches the committed layout (unless this open already
// has it) and returns a digest of it: equal digests mean equal content.
// It also returns the file's attributes as fetched with the layout.
func (f *File) LayoutDigest(ctx context.Context) (block.ID, wire.Attr, error) {
	if err := f.loadLayout(ctx); err != nil {
		return block.ID{}, wire.Attr{}, err
	}
	f.mu.Lock()
	l := f.mu.layout
	f.mu.Unlock()
	if l == nil {
		return block.ID{}, wire.Attr{}, wire.Errorf(wire.CodeUnavailable, "layout of inode %d changed while fetched", f.ino)
	}
	content := wire.ExtentsResp{Size: l.Size, Extents: l.Extents} // not the times, which reads move
	return block.Sum(wire.Marshal(&content)), l.Attr, nil
}

// Read fills buf from off and returns how many bytes it read (short only
// at the end of the file).
func (f *File) Read(ctx context.Context, off uint64, buf []byte) (int, error) {
	if err := f.loadLayout(ctx); err != nil {
		return 0, err
	}
	f.reportRead(ctx)
	f.mu.Lock()
	layout := f.mu.layout
	gen := f.mu.layoutGen
	size := f.mu.size
	if layout == nil { // a flush raced with us; overlay nothing stale
		f.mu.Unlock()
		return f.Read(ctx, off, buf)
	}
	if off >= size {
		f.mu.Unlock()
		return 0, nil
	}
	buf = buf[:min(uint64(len(buf)), size-off)]
	end := off + uint64(len(buf))
	// The uncommitted writes over [off, end), oldest first, with their
	// bytes as of now (an uploaded block's are fetched by ID).
	type pendingView struct {
		p    *pendingBlock
		data []byte
	}
	var pending []pendingView
	for _, p := range f.mu.pending {
		if p.covers(off, end) {
			pending = append(pending, pendingView{p, p.data})
		}
	}
	if p := f.mu.pack; p != nil && p.covers(off, end) { // the pack only grows: a snapshot
		pending = append(pending, pendingView{&pendingBlock{runs: p.runs}, p.data})
	}
	var open []byte
	if len(f.mu.buf) > 0 && f.mu.bufOff < end && f.mu.bufOff+uint64(len(f.mu.buf)) > off {
		open = slices.Clone(f.mu.buf)
	}
	openOff := f.mu.bufOff
	// A read near where the last one ended is sequential: it fetches whole
	// blocks and reads ahead. Others fetch only the groups they need.
	if off+seqWindow >= f.mu.readEnd && off <= f.mu.readEnd+seqWindow {
		f.mu.seqReads++
	} else {
		f.mu.seqReads = 0
	}
	sequential := f.mu.seqReads >= 2
	f.mu.readEnd = end
	f.mu.Unlock()

	clear(buf)
	exts := layout.Extents
	i := sort.Search(len(exts), func(i int) bool { return exts[i].End() > off })
	last := i
	for ; i < len(exts) && exts[i].Off < end; i++ {
		e := exts[i]
		if !sequential && e.BlockLen > smallBlock {
			// Only the part of the extent that the read covers.
			lo, hi := max(off, e.Off), min(end, e.End())
			data, err := f.c.getRange(ctx, e.Block, uint64(e.BlockLen), uint64(e.BlockOff)+lo-e.Off, hi-lo)
			if err != nil {
				return 0, err
			}
			overlay(buf, off, data, lo)
			last = i
			if (e.Off < lo || e.End() > hi) && len(pending) == 0 && open == nil {
				f.warm(gen, layout, e, lo)
			}
			continue
		}
		data, err := f.c.getBlock(ctx, e.Block)
		if err != nil {
			return 0, err
		}
		if uint64(len(data)) < uint64(e.BlockOff)+uint64(e.Len) {
			return 0, wire.Errorf(wire.CodeCorrupt, "block %s shorter than its extent", e.Block.Short())
		}
		overlay(buf, off, data[e.BlockOff:e.BlockOff+e.Len], e.Off)
		last = i
	}
	for _, v := range pending {
		if v.data == nil {
			var err error
			if v.data, err = f.c.getBlock(ctx, v.p.id); err != nil {
				return 0, err
			}
		}
		v.p.overlayTo(buf, off, v.data)
	}
	if open != nil {
		overlay(buf, off, open, openOff)
	}
	if sequential {
		f.readahead(exts, last)
	}
	return len(buf), nil
}

// overlay copies the part of src (which starts at file offset srcOff)
// that falls inside dst (which starts at dstOff).
func overlay(dst []byte, dstOff uint64, src []byte, srcOff uint64) {
	lo := max(dstOff, srcOff)
	hi := min(dstOff+uint64(len(dst)), srcOff+uint64(len(src)))
	if lo < hi {
		copy(dst[lo-dstOff:hi-dstOff], src[lo-srcOff:hi-srcOff])
	}
}

// readahead starts fetching the blocks after extent i when the reader
// moved forward, so a sequential reader finds them in the cache.
func (f *File) readahead(exts []wire.Extent, i int) {
	f.mu.Lock()
	prev := f.mu.lastRead
	f.mu.lastRead = i
	f.mu.Unlock()
	if i < prev || i >= len(exts) {
		return
	}
	for j := i + 1; j < len(exts) && j <= i+f.c.cfg.Readahead; j++ {
		id := exts[j].Block
		if _, ok := f.c.cache.get(id); ok {
			continue
		}
		select {
		case f.c.prefetches <- struct{}{}:
		default:
			return // the mount has enough blocks on their way: memory stays bounded however many read
		}
		f.c.goBackground(func(ctx context.Context) {
			defer func() { <-f.c.prefetches }()
			f.c.getBlock(ctx, id)
		})
	}
}

// Truncate sets the file's size, after committing pending writes so that
// they land before the cut.
func (f *File) Truncate(ctx context.Context, size uint64) (wire.Attr, error) {
	if err := f.Flush(ctx); err != nil {
		return wire.Attr{}, err
	}
	f.flushMu.Lock()
	defer f.flushMu.Unlock()
	var resp wire.AttrResp
	err := f.c.meta(ctx, wire.MSetAttr, &wire.SetAttrReq{Ino: f.ino, Valid: wire.SetSize, Size: size}, &resp)
	f.mu.Lock()
	f.dropLayoutLocked()
	if err == nil {
		// Writes after the cut grow the file from its new size, not the old.
		f.mu.size = resp.Attr.Size
		f.mu.dirtyEnd = min(f.mu.dirtyEnd, resp.Attr.Size)
		f.mu.floor = resp.Attr.Size
		f.mu.known = resp.Attr.Mtime
	}
	f.mu.Unlock()
	f.awaitFills() // before the kernel cuts its cache to the new size
	return resp.Attr, err
}
