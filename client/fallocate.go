package client

import (
	"context"
	"slices"

	"github.com/cairn-fs/cairn/internal/wire"
)

// Fallocate applies fallocate(2) (see wire.FallocateReq). Pending writes
// are committed first, so that a punched range loses them as it would on
// a local disk.
func (f *File) Fallocate(ctx context.Context, mode uint32, off, length uint64) (wire.Attr, error) {
	if err := f.Flush(ctx); err != nil {
		return wire.Attr{}, err
	}
	f.flushMu.Lock()
	defer f.flushMu.Unlock()
	var resp wire.AttrResp
	err := f.c.meta(ctx, wire.MFallocate, &wire.FallocateReq{Ino: f.ino, Mode: mode, Off: off, Len: length}, &resp)
	f.mu.Lock()
	f.dropLayoutLocked() // refetched, with the new size, at the next read
	if err == nil {
		f.mu.known = resp.Attr.Mtime
	}
	f.mu.Unlock()
	f.awaitFills()
	return resp.Attr, err
}

// seekBlock is the granularity at which data and holes are reported, as
// ext4 does with its 4 KiB blocks: a block that holds any data is data.
const seekBlock = 4096

// Seek answers lseek(2)'s SEEK_DATA (hole false: the first data at or
// after off) and SEEK_HOLE (hole true: the first hole at or after off;
// the end of the file counts as one). ok is false when off is at or past
// the end of the file (ENXIO). Data is what the committed layout and this
// mount's uncommitted writes cover, rounded out to whole 4 KiB blocks.
func (f *File) Seek(ctx context.Context, off uint64, hole bool) (pos uint64, ok bool, err error) {
	if err := f.loadLayout(ctx); err != nil {
		return 0, false, err
	}
	type span struct{ start, end uint64 }
	f.mu.Lock()
	if f.mu.layout == nil { // a flush raced with us: ask again
		f.mu.Unlock()
		return f.Seek(ctx, off, hole)
	}
	size := f.mu.size
	spans := make([]span, 0, len(f.mu.layout.Extents)+len(f.mu.pending)+1)
	for _, e := range f.mu.layout.Extents {
		spans = append(spans, span{e.Off, e.End()})
	}
	for _, p := range f.mu.pending {
		for _, e := range p.extents() {
			spans = append(spans, span{e.Off, e.End()})
		}
	}
	if f.mu.pack != nil {
		for _, r := range f.mu.pack.runs {
			spans = append(spans, span{r.off, r.off + uint64(r.n)})
		}
	}
	if len(f.mu.buf) > 0 {
		spans = append(spans, span{f.mu.bufOff, f.mu.bufOff + uint64(len(f.mu.buf))})
	}
	f.mu.Unlock()
	if off >= size {
		return 0, false, nil
	}
	for i := range spans {
		spans[i].start &^= seekBlock - 1
		spans[i].end = min((spans[i].end+seekBlock-1)&^(seekBlock-1), size)
	}
	slices.SortFunc(spans, func(a, b span) int {
		switch {
		case a.start < b.start:
			return -1
		case a.start > b.start:
			return 1
		}
		return 0
	})
	pos = off
	for _, s := range spans {
		if s.end <= pos {
			continue
		}
		if s.start > pos { // pos is in a hole
			if hole {
				return pos, true, nil
			}
			pos = s.start
			if pos >= size {
				return 0, false, nil
			}
			return pos, true, nil
		}
		// pos is in data
		if !hole {
			return pos, true, nil
		}
		pos = s.end // sorted by start: later spans may continue it
	}
	if hole {
		return min(pos, size), true, nil
	}
	return 0, false, nil // only a hole up to the end
}
