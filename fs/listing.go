package fs

import (
	"context"
	"hash/fnv"
	"sort"

	"github.com/cairn-fs/cairn/internal/wire"
)

// listing is an open directory's view of its entries, fetched from the
// metaserver a page at a time in name order. A readdir offset is an
// index into the listing, so it stays valid while entries are removed
// (rm -rf deleting as it lists never skips a name).
//
// Memory stays bounded whatever the directory holds: only the pages
// around where the reader is are kept (the one read and the one before
// it, which the kernel may ask for again when a getdents buffer filled
// up mid-page), plus one mark per page fetched — the name it starts
// after and a digest of its names — about 50 bytes per 1024 entries. A
// seekdir back to a dropped page fetches it again from its mark: if its
// names are what they were, the offset is exact; if some were created
// or removed there since, the listing goes on from the page's start, so
// a name may come twice but none is skipped.
type listing struct {
	ino     uint64
	base    int             // listing index of entries[0]
	entries []wire.DirEntry // the kept part of the listing
	next    string          // the name after which the next page starts
	more    bool            // whether pages follow the kept part
	marks   []pageMark      // by start, one per page fetched

	// dir is the directory's attributes as the first page brought them
	// (wire.ReadDirResp.Dir), else Ino 0.
	dir wire.Attr
}

type pageMark struct {
	start  int    // listing index of the page's first entry
	after  string // the name the page starts after ("" for the first)
	digest uint64 // of the page's names, to tell whether it changed
}

// listPage is the entries fetched at once; the kernel's readdir asks for
// far fewer (a 4 KiB buffer).
const listPage = 1024

// reset starts the listing over (opendir, rewinddir).
func (l *listing) reset() {
	*l = listing{ino: l.ino, more: true, entries: l.entries[:0]}
}

// seek prepares the listing to be read from index i (0 is the first
// entry after "." and "..") and returns the index reading goes on from:
// i, or the start of i's page if that page changed since it was read.
func (l *listing) seek(ctx context.Context, c lister, i int) (int, error) {
	if i >= l.base {
		return i, nil
	}
	// Back to a dropped page: fetch it again from its mark.
	k := sort.Search(len(l.marks), func(k int) bool { return l.marks[k].start > i }) - 1
	m := l.marks[k]
	l.marks = l.marks[:k]
	l.base, l.entries, l.next, l.more = m.start, nil, m.after, true
	if err := l.fetch(ctx, c); err != nil {
		return 0, err
	}
	if l.marks[k].digest != m.digest {
		return m.start, nil
	}
	return i, nil
}

// lister fetches a page of a directory (client.Client.ReadDir).
type lister interface {
	ReadDir(ctx context.Context, ino uint64, after string, limit int) (wire.ReadDirResp, error)
}

// entry returns the entry at index i >= the index seek returned,
// fetching pages as needed and dropping those the reader has left
// behind; ok is false past the end.
func (l *listing) entry(ctx context.Context, c lister, i int) (e wire.DirEntry, ok bool, err error) {
	for i >= l.base+len(l.entries) && l.more {
		l.dropBefore(i - listPage)
		if err := l.fetch(ctx, c); err != nil {
			return e, false, err
		}
	}
	if i < l.base || i >= l.base+len(l.entries) {
		return e, false, nil
	}
	return l.entries[i-l.base], true, nil
}

// fetch appends the next page and marks where it starts.
func (l *listing) fetch(ctx context.Context, c lister) error {
	page, err := c.ReadDir(ctx, l.ino, l.next, listPage)
	if err != nil {
		return err
	}
	l.add(page)
	return nil
}

// add appends page, the one after the kept entries, and marks where it
// starts.
func (l *listing) add(page wire.ReadDirResp) {
	h := fnv.New64a()
	for _, e := range page.Entries {
		h.Write([]byte(e.Name))
		h.Write([]byte{0})
	}
	start := l.base + len(l.entries)
	if n := len(l.marks); n == 0 || l.marks[n-1].start < start {
		l.marks = append(l.marks, pageMark{start: start, after: l.next, digest: h.Sum64()})
	}
	l.entries = append(l.entries, page.Entries...)
	l.more = page.More
	if page.Dir.Ino != 0 {
		l.dir = page.Dir
	}
	if n := len(page.Entries); n > 0 {
		l.next = page.Entries[n-1].Name
	}
}

// fill makes a listing just reset the whole of a directory, entries,
// with dir the directory's attributes (recentListing).
func (l *listing) fill(entries []wire.DirEntry, dir wire.Attr) {
	l.add(wire.ReadDirResp{Entries: entries, Dir: dir})
}

// dropBefore drops the kept pages before the one holding index i.
func (l *listing) dropBefore(i int) {
	k := sort.Search(len(l.marks), func(k int) bool { return l.marks[k].start > i }) - 1
	if k < 0 || l.marks[k].start <= l.base {
		return
	}
	cut := l.marks[k].start - l.base
	if cut > len(l.entries) {
		cut = len(l.entries)
	}
	// Copied rather than resliced, so the dropped entries' memory goes.
	l.entries = append([]wire.DirEntry(nil), l.entries[cut:]...)
	l.base += cut
}

// kept is how many entries the listing holds in memory.
func (l *listing) kept() int { return len(l.entries) }
