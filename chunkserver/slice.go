package chunkserver

import (
	"container/list"
	"errors"
	"io"
	"os"
	"sync"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/wire"
)

// outboardCacheSize bounds the outboards kept in memory: 16 KiB each for
// a full block, so about 16 MiB, covering 16 GiB of blocks.
const outboardCacheSize = 1024

// outboards keeps the Bao outboards of recently sliced blocks. An
// outboard is computed from the whole block the first time it is sliced,
// which also verifies that copy against its ID; later slices read only
// the groups they carry. A copy that rots after that is caught by the
// client, which verifies every slice against the ID.
type outboards struct {
	mu struct {
		sync.Mutex
		lru   *list.List // of *outboardEntry, most recent at front
		index map[block.ID]*list.Element
	}
}

type outboardEntry struct {
	id       block.ID
	size     uint64
	outboard []byte
}

func newOutboards() *outboards {
	o := &outboards{}
	o.mu.lru = list.New()
	o.mu.index = make(map[block.ID]*list.Element)
	return o
}

func (o *outboards) get(id block.ID) (*outboardEntry, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	el, ok := o.mu.index[id]
	if !ok {
		return nil, false
	}
	o.mu.lru.MoveToFront(el)
	return el.Value.(*outboardEntry), true
}

func (o *outboards) add(e *outboardEntry) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.mu.index[e.id]; ok {
		return
	}
	o.mu.index[e.id] = o.mu.lru.PushFront(e)
	if o.mu.lru.Len() > outboardCacheSize {
		old := o.mu.lru.Remove(o.mu.lru.Back()).(*outboardEntry)
		delete(o.mu.index, old.id)
	}
}

// getRange returns a verified-slice encoding of [off, off+n) of block id.
func (s *diskStore) getRange(id block.ID, off, n uint64) ([]byte, error) {
	if n == 0 {
		return nil, wire.Errorf(wire.CodeInvalid, "empty range of block %s", id.Short())
	}
	e, ok := s.outboards.get(id)
	if !ok {
		// Building the outboard hashes the whole copy, which is also its
		// check against the ID: reading it through get would hash it twice.
		data, err := s.readUnverified(id)
		if err != nil {
			return nil, err
		}
		ob, ok := block.Outboard(id, data)
		if !ok {
			return nil, wire.Errorf(wire.CodeCorrupt, "block %s in %s fails its hash", id.Short(), s.dir)
		}
		e = &outboardEntry{id: id, size: uint64(len(data)), outboard: ob}
		s.outboards.add(e)
		if off+n > e.size {
			return nil, rangeErr(id, off, n, e.size)
		}
		lo, alen := block.AlignSlice(off, n, e.size)
		return block.ExtractSlice(data[lo:lo+alen], e.outboard, off, n)
	}
	if off+n > e.size {
		return nil, rangeErr(id, off, n, e.size)
	}
	f, err := os.Open(s.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, wire.Errorf(wire.CodeNotFound, "block %s", id.Short())
	}
	if err != nil {
		return nil, ioErr("read block "+id.Short(), err)
	}
	defer f.Close()
	head := make([]byte, blockHeader)
	hn, err := f.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, ioErr("read block "+id.Short(), err)
	}
	at := rawOffset(head[:hn])
	lo, alen := block.AlignSlice(off, n, e.size)
	if at < 0 { // compressed: the groups come out of the whole block
		data, err := s.readUnverified(id)
		if err != nil {
			return nil, err
		}
		if uint64(len(data)) < lo+alen {
			return nil, wire.Errorf(wire.CodeCorrupt, "block %s in %s is shorter than it was", id.Short(), s.dir)
		}
		return block.ExtractSlice(data[lo:lo+alen], e.outboard, off, n)
	}
	groups := make([]byte, alen)
	if _, err := f.ReadAt(groups, int64(at)+int64(lo)); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, wire.Errorf(wire.CodeCorrupt, "block %s in %s is shorter than it was", id.Short(), s.dir)
		}
		return nil, ioErr("read block "+id.Short(), err)
	}
	return block.ExtractSlice(groups, e.outboard, off, n)
}

func rangeErr(id block.ID, off, n, size uint64) error {
	return wire.Errorf(wire.CodeInvalid, "range [%d, %d) outside block %s of %d bytes", off, off+n, id.Short(), size)
}
