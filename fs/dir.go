package fs

import (
	"sync"

	"github.com/cairn-fs/cairn/client"
	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// dirHandle is an open directory: the part of its listing being read
// (listing.go).
type dirHandle struct {
	ino     uint64
	open    *client.File // keeps the directory's attributes if it is removed while open
	mu      sync.Mutex   // guards listing (the kernel sends one readdir at a time; Held reads it too)
	listing listing
	reused  bool // the listing is a recent one's, without entries' attributes (recentlisting.go)
}

func (f *FS) OpenDir(_ <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.next++
	// Registering the directory as open with the client makes an rmdir
	// keep it (with no links) until its last release, as Linux does.
	d := &dirHandle{ino: in.NodeId, open: f.c.Open(in.NodeId)}
	d.listing.ino = in.NodeId
	d.listing.reset()
	f.mu.dirs[f.mu.next] = d
	out.Fh = f.mu.next
	return fuse.OK
}

func (f *FS) ReleaseDir(in *fuse.ReleaseIn) {
	f.mu.Lock()
	d := f.mu.dirs[in.Fh]
	delete(f.mu.dirs, in.Fh)
	f.mu.Unlock()
	if d == nil {
		return
	}
	if err := d.open.Release(ctx()); err != nil {
		f.log.Error("releasedir", "err", err)
	}
}

// entryAt returns the i-th entry of the listing (0 and 1 are "." and
// ".."), fetching pages as needed; ok is false past the end.
func (f *FS) entryAt(d *dirHandle, i int) (e wire.DirEntry, ok bool, err error) {
	switch i {
	case 0:
		return wire.DirEntry{Name: ".", Attr: wire.Attr{Mode: fuse.S_IFDIR}}, true, nil
	case 1:
		return wire.DirEntry{Name: "..", Attr: wire.Attr{Mode: fuse.S_IFDIR}}, true, nil
	}
	return d.listing.entry(ctx(), f.c, i-2)
}

func (f *FS) readDir(in *fuse.ReadIn, out *fuse.DirEntryList, plus bool) fuse.Status {
	f.mu.Lock()
	d := f.mu.dirs[in.Fh]
	f.mu.Unlock()
	if d == nil {
		return fuse.EBADF
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	start := int(in.Offset)
	if start == 0 { // a fresh listing or rewinddir: start over
		d.listing.reset()
		at := f.setAttr.changes.Load()
		defer f.setAttr.changing()() // the atime may move
		epoch := f.dirs.begin(d.ino)
		defer f.listed(d, epoch)
		d.reused = f.recent.take(d.ino, at, &d.listing)
		if !d.reused {
			defer func() { f.recent.keep(d.ino, at, f.setAttr.changes.Load(), &d.listing) }()
		}
	}
	if start > 2 {
		// A seekdir back past what the listing keeps may have to go on
		// from an earlier entry (listing.seek).
		s, err := d.listing.seek(ctx(), f.c, start-2)
		if err != nil {
			return f.toStatus("readdir", err)
		}
		start = s + 2
	}
	for i := start; ; i++ {
		e, ok, err := f.entryAt(d, i)
		if err != nil {
			return f.toStatus("readdir", err)
		}
		if !ok {
			return fuse.OK
		}
		de := fuse.DirEntry{Name: e.Name, Mode: e.Attr.Mode, Ino: e.Attr.Ino, Off: uint64(i + 1)}
		if !plus {
			if !out.AddDirEntry(de) {
				return fuse.OK
			}
			continue
		}
		eo := out.AddDirLookupEntry(de)
		if eo == nil {
			return fuse.OK
		}
		if e.Attr.Ino != 0 && !d.reused { // "." and ".." carry no entry
			f.fillEntry(&e.Attr, eo)
		}
	}
}

// listed ends a listing from the start (begun at epoch in f.dirs). The
// listing may have moved the directory's atime, so the kernel forgets
// its attributes (it forgets the atime after any listing anyway) and its
// next GETATTR is answered with the ones the listing brought back.
func (f *FS) listed(d *dirHandle, epoch uint64) {
	f.dirs.end(d.ino, epoch, d.listing.dir, f.timeout)
	f.dropAttrsAfterAccess(d.ino)
}

func (f *FS) ReadDir(_ <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return f.readDir(in, out, false)
}

func (f *FS) ReadDirPlus(_ <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return f.readDir(in, out, true)
}

// FsyncDir makes every namespace change so far durable, as fsync on a
// directory does on a local filesystem.
func (f *FS) FsyncDir(_ <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	return f.toStatus("fsyncdir", f.c.SyncMeta(ctx()))
}
