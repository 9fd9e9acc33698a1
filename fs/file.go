package fs

import (
	"errors"
	"syscall"

	"github.com/cairn-fs/cairn/client"
	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/hanwen/go-fuse/v2/fuse"
)

func (f *FS) addFile(h *fileHandle) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.next++
	f.mu.files[f.mu.next] = h
	return f.mu.next
}

func (f *FS) file(fh uint64) *fileHandle {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.files[fh]
}

func (f *FS) Create(_ <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	defer f.setAttr.changing()()
	a, err := f.makeIn(&wire.MakeReq{
		Parent: in.NodeId, Name: name, Mode: syscall.S_IFREG | in.Mode&0o7777, Uid: in.Uid, Gid: in.Gid, Umask: in.Umask,
	})
	if err != nil && in.Flags&syscall.O_EXCL == 0 && isExist(err) {
		// Another mount created it since the kernel looked: open that one.
		if a, err = f.c.Lookup(ctx(), in.NodeId, name); err == nil && in.Flags&syscall.O_TRUNC != 0 {
			a, err = f.c.SetAttr(ctx(), &wire.SetAttrReq{Ino: a.Ino, Valid: wire.SetSize})
		}
	}
	if err != nil {
		return f.toStatus("create", err)
	}
	f.opened(&a, f.c.Open(a.Ino), in.Flags, out)
	return fuse.OK
}

// opened answers a create (or a tmpfile) of a, open in file.
func (f *FS) opened(a *wire.Attr, file *client.File, flags uint32, out *fuse.CreateOut) {
	f.fillEntry(a, &out.EntryOut)
	h := &fileHandle{f: file, flags: flags}
	h.addWriter()
	out.OpenOut.Fh = f.addFile(h)
}

// Tmpfile answers open's O_TMPFILE: an open file in no directory, which
// goes at its last close unless the process links it into place first
// (linkat of /proc/self/fd/N; the kernel refuses that itself for a file
// opened with O_EXCL too).
func (f *FS) Tmpfile(_ <-chan struct{}, in *fuse.CreateIn, out *fuse.CreateOut) fuse.Status {
	defer f.setAttr.changing()()
	a, file, err := f.c.Tmpfile(ctx(), &wire.TmpfileReq{
		Parent: in.NodeId, Mode: in.Mode & 0o7777, Uid: in.Uid, Gid: in.Gid, Umask: in.Umask,
	})
	if err != nil {
		return f.toStatus("tmpfile", err)
	}
	f.opened(&a, file, in.Flags, out)
	return fuse.OK
}

func (f *FS) Open(_ <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	wasOpen := f.c.IsOpen(in.NodeId)
	h := &fileHandle{f: f.c.Open(in.NodeId), flags: in.Flags}
	h.addWriter()
	// An open must see what other mounts committed (close-to-open): no
	// reply kept from before it may answer a GETATTR after it.
	f.setAttr.changing()()
	known := f.openCache(in.NodeId, h, in.Flags, out)
	// The kernel may open through a cached name whose file another mount
	// has since removed (sqlite's -journal, created and deleted by each
	// writer). ESTALE makes it look the name up again, and then create
	// or not find it, as it should.
	if err := f.c.Linked(ctx(), in.NodeId, known, wasOpen); errors.Is(err, wire.ErrNotFound) {
		h.dropWriter()
		h.f.Release(ctx())
		return fuse.Status(syscall.ESTALE)
	}
	out.Fh = f.addFile(h)
	return fuse.OK
}

func (f *FS) Read(_ <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	h := f.file(in.Fh)
	if h == nil {
		return nil, fuse.EBADF
	}
	defer f.setAttr.changing()() // the atime may move
	n, err := h.f.Read(ctx(), in.Offset, buf[:in.Size])
	if err != nil {
		return nil, f.toStatus("read", err)
	}
	if !h.read.Swap(true) {
		f.dropAttrsAfterAccess(in.NodeId)
	}
	return fuse.ReadResultData(buf[:n]), fuse.OK
}

func (f *FS) Write(_ <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	h := f.file(in.Fh)
	if h == nil {
		return 0, fuse.EBADF
	}
	defer f.setAttr.changing()()
	h.f.Write(in.Offset, data)
	return uint32(len(data)), fuse.OK
}

// Flush runs at every close(2) of a descriptor: the data is durable and
// visible to other mounts when close returns.
// It also releases the closing process's POSIX locks on the file.
func (f *FS) Flush(_ <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	st := f.sync("flush", in.Fh)
	if err := f.c.ReleaseLocks(ctx(), in.NodeId, in.LockOwner); err != nil {
		f.log.Error("release locks at close", "ino", in.NodeId, "err", err)
	}
	return st
}

func (f *FS) Fsync(_ <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	return f.sync("fsync", in.Fh)
}

// sync commits the handle's writes. The attributes the commit returns
// answer the GETATTR that follows a close when the file is looked at
// next (an editor, or any program that writes a file and then stats
// it), as a SETATTR's reply answers the one after it (setattrreply.go).
func (f *FS) sync(op string, fh uint64) fuse.Status {
	h := f.file(fh)
	if h == nil {
		return fuse.EBADF
	}
	at := f.setAttr.begin()
	a, err := h.f.FlushAttr(ctx())
	f.setAttr.end(at, a, f.timeout)
	return f.toStatus(op, err)
}

func (f *FS) Release(_ <-chan struct{}, in *fuse.ReleaseIn) {
	f.mu.Lock()
	h := f.mu.files[in.Fh]
	delete(f.mu.files, in.Fh)
	f.mu.Unlock()
	if h == nil {
		return
	}
	// Writes through a mapping can arrive after the last flush, and the
	// release commits them (so may a lock released here). A release with
	// none to commit changes no attributes, and so leaves the close's
	// reply to answer the GETATTR after it (the kernel sends the RELEASE
	// after close returns, often after that GETATTR).
	if _, _, dirty, _ := h.f.Dirty(); dirty {
		defer f.setAttr.changing()()
	}
	flockOwner := uint64(0)
	if in.ReleaseFlags&releaseFlockUnlock != 0 {
		flockOwner = in.LockOwner
	}
	f.releaseHandleLocks(in.NodeId, h, flockOwner)
	if err := h.f.Flush(ctx()); err != nil {
		f.log.Error("flush at release failed", "err", err)
	}
	h.dropWriter()
	if err := h.f.Release(ctx()); err != nil {
		f.log.Error("release", "err", err)
	}
}

func isExist(err error) bool { return errors.Is(err, wire.ErrExists) }

// addWriter tells the client when the handle may write (or truncate at
// open), which stops it filling the kernel's page cache (client/fill.go).
func (h *fileHandle) addWriter() {
	if h.flags&syscall.O_ACCMODE != syscall.O_RDONLY || h.flags&syscall.O_TRUNC != 0 {
		h.writer = true
		h.f.AddWriter()
	}
}

// dropWriter undoes addWriter when the handle goes.
func (h *fileHandle) dropWriter() {
	if h.writer {
		h.f.DropWriter()
	}
}
