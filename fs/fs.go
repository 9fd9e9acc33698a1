// Package fs maps FUSE requests onto a cairn client. It uses go-fuse's
// raw protocol API: the kernel's node IDs are cairn inode numbers (root
// is 1), so there is no node tree to keep in step with a namespace that
// other mounts change too. The only state here is file and directory
// handles.
//
// Kernel caching: entries and attributes are cached for a timeout
// (Options.AttrTimeout). Every open for reading fetches the file's
// committed layout: if it is the one this mount last cached, the kernel
// keeps its pages (FOPEN_KEEP_CACHE); otherwise the pages and the cached
// size are dropped. With the client's flush-on-close this gives
// close-to-open consistency whatever the attribute timeout (cache.go).
// Permission checks are the kernel's (default_permissions).
package fs

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cairn-fs/cairn/client"
	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// FS is the FUSE filesystem.
type FS struct {
	fuse.RawFileSystem // answers ENOSYS for what is not implemented below

	c         *client.Client
	log       *slog.Logger
	timeout   time.Duration // entry and attribute cache timeout
	xattrs    xattrCache    // recent answers for the attributes the kernel asks for most (xattr.go)
	anyXattrs presence      // whether any extended attribute exists (xattr.go)
	acls      presence      // whether any POSIX ACL exists (xattr.go)
	server    *fuse.Server  // set by Init; for cache invalidations
	pages     pageCache     // when an open may keep the kernel's page cache (cache.go)
	dirs      dirAttrs      // directories' attributes from this mount's own changes (dirattr.go)
	setAttr   setAttrReply  // the last SETATTR's or commit's answer, for the GETATTR after it (setattrreply.go)
	recent    recentListing // the last whole listing, for rm -r's second one (recentlisting.go)

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
	read       atomic.Bool // a read went through this handle (see dropAttrsAfterAccess)
	writer     bool        // the handle may write: client.File.AddWriter was called
}

func newFS(c *client.Client, log *slog.Logger, timeout time.Duration) *FS {
	f := &FS{RawFileSystem: fuse.NewDefaultRawFileSystem(), c: c, log: log, timeout: timeout}
	f.mu.files = make(map[uint64]*fileHandle)
	f.mu.dirs = make(map[uint64]*dirHandle)
	f.pages.init()
	f.anyXattrs.ask = func() (bool, error) { return c.XattrsInUse(ctx()) }
	f.acls.ask = func() (bool, error) {
		n, err := c.ACLCount(ctx())
		return n > 0, err
	}
	return f
}

func (f *FS) String() string { return "cairn" }

// ctx bounds one request; the client's own retry limit applies inside.
func ctx() context.Context { return context.Background() }

func (f *FS) fillAttr(a *wire.Attr, out *fuse.Attr) {
	*out = fuse.Attr{
		Ino: a.Ino, Size: a.Size, Blocks: (a.Size + 511) / 512,
		Mode: a.Mode, Nlink: a.Nlink, Rdev: a.Rdev, Blksize: 1 << 20,
	}
	if a.Mode&syscall.S_IFMT == syscall.S_IFREG {
		out.Blocks = (a.Stored + 511) / 512 // holes take none
	}
	out.Atime, out.Atimensec = splitNanos(a.Atime)
	out.Mtime, out.Mtimensec = splitNanos(a.Mtime)
	out.Ctime, out.Ctimensec = splitNanos(a.Ctime)
	out.Uid, out.Gid = a.Uid, a.Gid
}

// splitNanos turns nanoseconds since the epoch into FUSE's seconds (a
// signed number in an unsigned field) and nanoseconds, which are never
// negative: a time before 1970 has its nanoseconds counted forward from
// the second before it.
func splitNanos(ns int64) (uint64, uint32) {
	sec, nsec := ns/1e9, ns%1e9
	if nsec < 0 {
		sec, nsec = sec-1, nsec+1e9
	}
	return uint64(sec), uint32(nsec)
}

// nanos turns a time to set into nanoseconds since the epoch, clamped to
// what cairn can hold as a local file system clamps to its range: not
// before ext4's earliest time (1901-12-13), not after the last that
// int64 nanoseconds reach (2262-04-11; ext4 goes on to 2446).
func nanos(t time.Time) int64 {
	const minSec, maxSec, maxNsec = -1 << 31, math.MaxInt64 / int64(1e9), math.MaxInt64 % int64(1e9)
	sec, nsec := t.Unix(), int64(t.Nanosecond())
	switch {
	case sec < minSec:
		return minSec * 1e9
	case sec > maxSec || sec == maxSec && nsec > maxNsec:
		return math.MaxInt64
	}
	return sec*1e9 + nsec
}

// fillEntry answers the kernel an entry, which is a reference it takes
// to the inode until it forgets it: the client counts those to special
// files (client/held.go).
func (f *FS) fillEntry(a *wire.Attr, out *fuse.EntryOut) {
	if client.IsSpecial(a.Mode) {
		f.c.Hold(a.Ino)
	}
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

// Forget gives the client back the kernel's references, which ends a
// special file whose names are gone (client/held.go).
func (f *FS) Forget(nodeid, nlookup uint64) {
	if err := f.c.Forget(ctx(), nodeid, nlookup); err != nil {
		f.log.Warn("purge of an unlinked special file failed; it goes when this mount's session ends", "ino", nodeid, "err", err)
	}
}

func (f *FS) GetAttr(_ <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	if a, ok := f.dirs.take(in.NodeId); ok {
		return f.attr("getattr", a, nil, out)
	}
	if a, ok := f.setAttr.take(in.NodeId); ok {
		return f.attr("getattr", a, nil, out)
	}
	a, err := f.c.GetAttr(ctx(), in.NodeId)
	return f.attr("getattr", a, err, out)
}

func (f *FS) SetAttr(_ <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	if f.refuseChown(in) {
		return fuse.EPERM
	}
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
		req.Atime = nanos(t)
	}
	if in.Valid&fuse.FATTR_MTIME_NOW != 0 {
		req.Valid |= wire.SetMtimeNow
	} else if t, ok := in.GetMTime(); ok {
		req.Valid |= wire.SetMtime
		req.Mtime = nanos(t)
	}
	if err := f.chownDropsSgid(in, req); err != nil {
		return f.toStatus("setattr", err)
	}
	f.dirs.forget(in.NodeId)
	at := f.setAttr.begin()
	a, err := f.c.SetAttr(ctx(), req)
	f.dirs.forget(in.NodeId)
	if err == nil {
		a, err = f.dropSgid(in, a)
	}
	if err != nil {
		a = wire.Attr{}
	}
	f.setAttr.end(at, a, f.timeout)
	if req.Valid&wire.SetMode != 0 {
		f.xattrs.forget(in.NodeId) // a chmod rewrites the access ACL
	}
	return f.attr("setattr", a, err, out)
}

// make creates an inode. The mount asks for FUSE_DONT_MASK, so mode
// arrives without the caller's umask applied: the metaserver applies it
// unless the parent's default ACL decides the mode instead.
func (f *FS) make(op string, h *fuse.InHeader, name string, mode, umask, rdev uint32, target string, out *fuse.EntryOut) fuse.Status {
	a, err := f.makeIn(&wire.MakeReq{
		Parent: h.NodeId, Name: name, Mode: mode, Uid: h.Uid, Gid: h.Gid, Rdev: rdev, Target: target, Umask: umask,
	})
	return f.entry(op, a, err, out)
}

// makeIn creates the inode req asks for (make, Create), keeping the
// parent's new attributes for the kernel's next GETATTR of it.
func (f *FS) makeIn(req *wire.MakeReq) (wire.Attr, error) {
	defer f.setAttr.changing()()
	epoch := f.dirs.begin(req.Parent)
	a, parent, err := f.c.MakeInDir(ctx(), req)
	f.dirs.end(req.Parent, epoch, parent, f.timeout)
	if err == nil {
		f.madeHere(a.Ino)
	}
	return a, err
}

func (f *FS) Mknod(_ <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	return f.make("mknod", &in.InHeader, name, in.Mode, in.Umask, in.Rdev, "", out)
}

func (f *FS) Mkdir(_ <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	return f.make("mkdir", &in.InHeader, name, syscall.S_IFDIR|in.Mode&0o7777, in.Umask, 0, "", out)
}

func (f *FS) Symlink(_ <-chan struct{}, h *fuse.InHeader, target, name string, out *fuse.EntryOut) fuse.Status {
	return f.make("symlink", h, name, syscall.S_IFLNK|0o777, 0, 0, target, out)
}

func (f *FS) Readlink(_ <-chan struct{}, h *fuse.InHeader) ([]byte, fuse.Status) {
	t, err := f.c.Readlink(ctx(), h.NodeId)
	return []byte(t), f.toStatus("readlink", err)
}

func (f *FS) Link(_ <-chan struct{}, in *fuse.LinkIn, name string, out *fuse.EntryOut) fuse.Status {
	defer f.setAttr.changing()()
	epoch := f.dirs.begin(in.NodeId)
	a, parent, err := f.c.LinkInDir(ctx(), in.Oldnodeid, in.NodeId, name)
	f.dirs.end(in.NodeId, epoch, parent, f.timeout)
	return f.entry("link", a, err, out)
}

func (f *FS) Unlink(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return f.toStatus("unlink", f.remove(h.NodeId, name, false))
}

func (f *FS) Rmdir(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return f.toStatus("rmdir", f.remove(h.NodeId, name, true))
}

func (f *FS) remove(dir uint64, name string, isDir bool) error {
	defer f.setAttr.changing()()
	epoch := f.dirs.begin(dir)
	parent, gone, err := f.c.RemoveInDir(ctx(), dir, name, isDir)
	f.dirs.end(dir, epoch, parent, f.timeout)
	// A directory removed while open here lives on with no links: what a
	// listing of it kept must not answer its fstat.
	f.dirs.forget(gone.Ino)
	return err
}

func (f *FS) Rename(_ <-chan struct{}, in *fuse.RenameIn, oldName, newName string) fuse.Status {
	const noReplace, exchange = 1, 2 // RENAME_NOREPLACE, RENAME_EXCHANGE
	if in.Flags&^(noReplace|exchange) != 0 {
		return fuse.EINVAL // RENAME_WHITEOUT is for overlay filesystems
	}
	defer f.setAttr.changing()()
	oldEpoch := f.dirs.begin(in.NodeId)
	newEpoch := oldEpoch
	if in.Newdir != in.NodeId {
		newEpoch = f.dirs.begin(in.Newdir)
	}
	oldDir, newDir, replaced, err := f.c.RenameInDirs(ctx(), &wire.RenameReq{
		OldParent: in.NodeId, OldName: oldName, NewParent: in.Newdir, NewName: newName, Flags: in.Flags,
	})
	f.dirs.end(in.NodeId, oldEpoch, oldDir, f.timeout)
	if in.Newdir != in.NodeId {
		f.dirs.end(in.Newdir, newEpoch, newDir, f.timeout)
	}
	f.dirs.forget(replaced.Ino) // as in remove
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

// dropAttrsAfterAccess makes the kernel forget ino's cached attributes
// after a read or a listing: the metaserver may have moved its atime
// (relatime), which the kernel, unlike for a local file system, does not
// do itself, and a stat must not show the old one for the attribute
// timeout.
func (f *FS) dropAttrsAfterAccess(ino uint64) {
	if f.server != nil {
		f.server.InodeNotify(ino, -1, 0)
	}
}
