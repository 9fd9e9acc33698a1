// Package fs maps FUSE requests onto a cairn client. It uses go-fuse's
// raw protocol API: the kernel's node IDs are cairn inode numbers (root
// is 1), so there is no node tree to keep in step with a namespace that
// other mounts change too. The only state here is file and directory
// handles.
//
// Kernel caching: entries and attributes are cached for a short timeout
// (Options.AttrTimeout); the page cache is dropped at every open, which
// with the client's flush-on-close gives close-to-open consistency.
// Permission checks are the kernel's (default_permissions).
package fs

import (
	"context"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/cairn-fs/cairn/client"
	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// FS is the FUSE filesystem.
type FS struct {
	fuse.RawFileSystem // answers ENOSYS for what is not implemented below

	c       *client.Client
	log     *slog.Logger
	timeout time.Duration // entry and attribute cache timeout
	server  *fuse.Server  // set by Init, for cache invalidations (lock.go)

	mu struct {
		sync.Mutex
		next  uint64
		files map[uint64]*fileHandle
		dirs  map[uint64]*dirHandle
	}
}

type fileHandle struct {
	f     *client.File
	flags uint32
	// lockOwners are the lock owners that locked through this handle
	// (lock.go); guarded by FS.mu.
	lockOwners map[uint64]bool
}

func newFS(c *client.Client, log *slog.Logger, timeout time.Duration) *FS {
	f := &FS{RawFileSystem: fuse.NewDefaultRawFileSystem(), c: c, log: log, timeout: timeout}
	f.mu.files = make(map[uint64]*fileHandle)
	f.mu.dirs = make(map[uint64]*dirHandle)
	return f
}

func (f *FS) String() string { return "cairn" }

// ctx bounds one request; the client's own retry limit applies inside.
func ctx() context.Context { return context.Background() }

func (f *FS) fillAttr(a *wire.Attr, out *fuse.Attr) {
	*out = fuse.Attr{
		Ino: a.Ino, Size: a.Size, Blocks: (a.Size + 511) / 512,
		Atime: uint64(a.Atime / 1e9), Atimensec: uint32(a.Atime % 1e9),
		Mtime: uint64(a.Mtime / 1e9), Mtimensec: uint32(a.Mtime % 1e9),
		Ctime: uint64(a.Ctime / 1e9), Ctimensec: uint32(a.Ctime % 1e9),
		Mode: a.Mode, Nlink: a.Nlink, Rdev: a.Rdev, Blksize: 1 << 20,
	}
	out.Uid, out.Gid = a.Uid, a.Gid
}

func (f *FS) fillEntry(a *wire.Attr, out *fuse.EntryOut) {
	out.NodeId = a.Ino
	out.Generation = 1 // inode numbers are never reused
	out.SetEntryTimeout(f.timeout)
	out.SetAttrTimeout(f.timeout)
	f.fillAttr(a, &out.Attr)
}

func (f *FS) entry(op string, a wire.Attr, err error, out *fuse.EntryOut) fuse.Status {
	if err != nil {
		return f.toStatus(op, err)
	}
	f.fillEntry(&a, out)
	return fuse.OK
}

func (f *FS) attr(op string, a wire.Attr, err error, out *fuse.AttrOut) fuse.Status {
	if err != nil {
		return f.toStatus(op, err)
	}
	out.SetTimeout(f.timeout)
	f.fillAttr(&a, &out.Attr)
	return fuse.OK
}

func (f *FS) Lookup(_ <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	a, err := f.c.Lookup(ctx(), h.NodeId, name)
	return f.entry("lookup", a, err, out)
}

// Forget needs nothing: no per-inode state lives here.
func (f *FS) Forget(nodeid, nlookup uint64) {}

func (f *FS) GetAttr(_ <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	a, err := f.c.GetAttr(ctx(), in.NodeId)
	return f.attr("getattr", a, err, out)
}

func (f *FS) SetAttr(_ <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	req := &wire.SetAttrReq{Ino: in.NodeId}
	if m, ok := in.GetMode(); ok {
		req.Valid |= wire.SetMode
		req.Mode = m
	}
	if u, ok := in.GetUID(); ok {
		req.Valid |= wire.SetUid
		req.Uid = u
	}
	if g, ok := in.GetGID(); ok {
		req.Valid |= wire.SetGid
		req.Gid = g
	}
	if s, ok := in.GetSize(); ok {
		req.Valid |= wire.SetSize
		req.Size = s
	}
	if in.Valid&fuse.FATTR_ATIME_NOW != 0 {
		req.Valid |= wire.SetAtimeNow
	} else if t, ok := in.GetATime(); ok {
		req.Valid |= wire.SetAtime
		req.Atime = t.UnixNano()
	}
	if in.Valid&fuse.FATTR_MTIME_NOW != 0 {
		req.Valid |= wire.SetMtimeNow
	} else if t, ok := in.GetMTime(); ok {
		req.Valid |= wire.SetMtime
		req.Mtime = t.UnixNano()
	}
	a, err := f.c.SetAttr(ctx(), req)
	return f.attr("setattr", a, err, out)
}

func (f *FS) make(op string, h *fuse.InHeader, name string, mode, rdev uint32, target string, out *fuse.EntryOut) fuse.Status {
	a, err := f.c.Make(ctx(), &wire.MakeReq{
		Parent: h.NodeId, Name: name, Mode: mode, Uid: h.Uid, Gid: h.Gid, Rdev: rdev, Target: target,
	})
	return f.entry(op, a, err, out)
}

func (f *FS) Mknod(_ <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	return f.make("mknod", &in.InHeader, name, in.Mode, in.Rdev, "", out)
}

func (f *FS) Mkdir(_ <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	return f.make("mkdir", &in.InHeader, name, syscall.S_IFDIR|in.Mode&0o7777, 0, "", out)
}

func (f *FS) Symlink(_ <-chan struct{}, h *fuse.InHeader, target, name string, out *fuse.EntryOut) fuse.Status {
	return f.make("symlink", h, name, syscall.S_IFLNK|0o777, 0, target, out)
}

func (f *FS) Readlink(_ <-chan struct{}, h *fuse.InHeader) ([]byte, fuse.Status) {
	t, err := f.c.Readlink(ctx(), h.NodeId)
	return []byte(t), f.toStatus("readlink", err)
}

func (f *FS) Link(_ <-chan struct{}, in *fuse.LinkIn, name string, out *fuse.EntryOut) fuse.Status {
	a, err := f.c.Link(ctx(), in.Oldnodeid, in.NodeId, name)
	return f.entry("link", a, err, out)
}

func (f *FS) Unlink(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return f.toStatus("unlink", f.c.Remove(ctx(), h.NodeId, name, false))
}

func (f *FS) Rmdir(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return f.toStatus("rmdir", f.c.Remove(ctx(), h.NodeId, name, true))
}

func (f *FS) Rename(_ <-chan struct{}, in *fuse.RenameIn, oldName, newName string) fuse.Status {
	const noReplace, exchange = 1, 2 // RENAME_NOREPLACE, RENAME_EXCHANGE
	if in.Flags&^(noReplace|exchange) != 0 {
		return fuse.EINVAL // RENAME_WHITEOUT is for overlay filesystems
	}
	err := f.c.Rename(ctx(), &wire.RenameReq{
		OldParent: in.NodeId, OldName: oldName, NewParent: in.Newdir, NewName: newName, Flags: in.Flags,
	})
	return f.toStatus("rename", err)
}

// Access is answered by the kernel (default_permissions); this is only
// reached for F_OK-style checks, which lookup already answered.
func (f *FS) Access(_ <-chan struct{}, in *fuse.AccessIn) fuse.Status { return fuse.OK }

func (f *FS) StatFs(_ <-chan struct{}, h *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	s, err := f.c.StatFS(ctx())
	if err != nil {
		return f.toStatus("statfs", err)
	}
	const bsize = 4096
	*out = fuse.StatfsOut{
		Blocks: s.Total / bsize, Bfree: s.Free / bsize, Bavail: s.Free / bsize,
		Files: s.Inodes + 1<<32, Ffree: 1 << 32,
		Bsize: bsize, Frsize: bsize, NameLen: wire.MaxName,
	}
	return fuse.OK
}
