package fs

import (
	"github.com/cairn-fs/cairn/client"
	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// dirHandle is an open directory: the entries listed so far, fetched from
// the metaserver a page at a time in name order. A readdir offset is an
// index into this list, so it stays valid while entries are removed
// (rm -rf deleting as it lists never skips a name).
type dirHandle struct {
	ino     uint64
	entries []wire.DirEntry
	more    bool
	open    *client.File // keeps the directory's attributes if it is removed while open
}

const dirPage = 1024

func (f *FS) OpenDir(_ <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.next++
	// Registering the directory as open with the client makes an rmdir
	// keep it (with no links) until its last release, as Linux does.
	f.mu.dirs[f.mu.next] = &dirHandle{ino: in.NodeId, more: true, open: f.c.Open(in.NodeId)}
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
	i -= 2
	for i >= len(d.entries) && d.more {
		after := ""
		if n := len(d.entries); n > 0 {
			after = d.entries[n-1].Name
		}
		page, err := f.c.ReadDir(ctx(), d.ino, after, dirPage)
		if err != nil {
			return e, false, err
		}
		d.entries = append(d.entries, page.Entries...)
		d.more = page.More
	}
	if i >= len(d.entries) {
		return e, false, nil
	}
	return d.entries[i], true, nil
}

func (f *FS) readDir(in *fuse.ReadIn, out *fuse.DirEntryList, plus bool) fuse.Status {
	f.mu.Lock()
	d := f.mu.dirs[in.Fh]
	f.mu.Unlock()
	if d == nil {
		return fuse.EBADF
	}
	if in.Offset == 0 { // a fresh listing or rewinddir: start over
		d.entries, d.more = nil, true
		defer f.dropAttrsAfterAccess(d.ino)
	}
	for i := int(in.Offset); ; i++ {
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
		if e.Attr.Ino != 0 { // "." and ".." carry no entry
			f.fillEntry(&e.Attr, eo)
		}
	}
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
