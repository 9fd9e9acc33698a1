package client

import (
	"context"
	"syscall"
	"time"

	"github.com/cairn-fs/cairn/internal/wire"
)

// The namespace operations are thin calls to the metaserver; each is one
// transaction there.

func (c *Client) attrCall(ctx context.Context, m wire.Method, req wire.Message) (wire.Attr, error) {
	var resp wire.AttrResp
	var err error
	if m == wire.MLookup || m == wire.MGetAttr {
		err = c.reads.call(ctx, m, req, &resp)
	} else {
		err = c.meta(ctx, m, req, &resp)
	}
	if err == nil {
		c.overlayDirty(&resp.Attr)
	}
	return resp.Attr, err
}

// overlayDirty shows this mount's uncommitted writes in attr. It also
// keeps attr's size from going below what this mount itself committed:
// the metaserver may have answered just before a commit of ours landed,
// and the pending writes were dropped just after, so neither shows them.
func (c *Client) overlayDirty(attr *wire.Attr) {
	if f := c.openFile(attr.Ino); f != nil {
		size, mtime, ok, floor := f.Dirty()
		attr.Size = max(attr.Size, floor)
		if ok {
			attr.Size = max(attr.Size, size)
			// As ext4 counts blocks reserved for writes not yet on disk.
			attr.Stored = min(attr.Stored+f.dirtyBytes(), attr.Size)
		}
		// mtime is 0 when the times were set after the last write
		// (setattr.go): then the metaserver's are the file's.
		if ok && mtime != 0 {
			// The write is newer than any committed mtime, even one set
			// in the future by utimensat before it.
			attr.Mtime = mtime
			attr.Ctime = max(attr.Ctime, mtime)
		}
	}
}

func (c *Client) Lookup(ctx context.Context, parent uint64, name string) (wire.Attr, error) {
	if c.names.absent(parent, name) {
		return wire.Attr{}, wire.Errorf(wire.CodeNotFound, "%q in inode %d", name, parent)
	}
	return c.attrCall(ctx, wire.MLookup, &wire.LookupReq{Parent: parent, Name: name})
}

// SetEntryTimeout lets lookups of names known to be absent from a
// directory this mount made be answered here for up to d after this
// mount last saw the directory unchanged by others (dirnames.go); the
// kernel caches names and negative entries that long anyway. Zero, the
// default, asks the metaserver every time. Call it before use.
func (c *Client) SetEntryTimeout(d time.Duration) { c.names.ttl = d }

func (c *Client) GetAttr(ctx context.Context, ino uint64) (wire.Attr, error) {
	return c.attrCall(ctx, wire.MGetAttr, &wire.InoReq{Ino: ino})
}

// SetAttr changes attributes; a size change goes through the open file,
// if any, so that pending writes land first.
func (c *Client) SetAttr(ctx context.Context, req *wire.SetAttrReq) (wire.Attr, error) {
	if req.Valid&wire.SetSize != 0 {
		f := c.Open(req.Ino)
		attr, err := f.Truncate(ctx, req.Size)
		f.Release(ctx)
		if err != nil {
			return attr, err
		}
		if req.Valid &^= wire.SetSize; req.Valid == 0 {
			return attr, nil
		}
	}
	if f := c.openFile(req.Ino); f != nil {
		return f.setAttrOpen(ctx, req)
	}
	return c.attrCall(ctx, wire.MSetAttr, req)
}

func (c *Client) Make(ctx context.Context, req *wire.MakeReq) (wire.Attr, error) {
	a, _, err := c.MakeInDir(ctx, req)
	return a, err
}

// MakeInDir is Make that also returns the parent's attributes as they
// were just after the change.
func (c *Client) MakeInDir(ctx context.Context, req *wire.MakeReq) (attr, parent wire.Attr, err error) {
	resp, err := c.change(ctx, wire.MMake, req, req.Parent, req.Name)
	if err == nil && resp.Attr.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		c.names.created(resp.Attr.Ino, resp.Attr.Ctime)
	}
	return resp.Attr, resp.Parent, err
}

// Tmpfile makes a file with no name (open's O_TMPFILE) and opens it. The
// metaserver keeps it as an orphan of this client's session, and the File
// purges it at its last close unless it was linked by then.
func (c *Client) Tmpfile(ctx context.Context, req *wire.TmpfileReq) (wire.Attr, *File, error) {
	req.Session = c.session
	var resp wire.AttrResp
	if err := c.meta(ctx, wire.MTmpfile, req, &resp); err != nil {
		return wire.Attr{}, nil, err
	}
	f := c.Open(resp.Attr.Ino)
	f.mu.Lock()
	f.mu.orphan = true
	f.mu.Unlock()
	return resp.Attr, f, nil
}

func (c *Client) Link(ctx context.Context, ino, parent uint64, name string) (wire.Attr, error) {
	a, _, err := c.LinkInDir(ctx, ino, parent, name)
	return a, err
}

// LinkInDir is Link that also returns the parent's new attributes.
func (c *Client) LinkInDir(ctx context.Context, ino, parent uint64, name string) (attr, parentAttr wire.Attr, err error) {
	resp, err := c.change(ctx, wire.MLink, &wire.LinkReq{Ino: ino, Parent: parent, Name: name}, parent, name)
	return resp.Attr, resp.Parent, err
}

// change sends a namespace change that adds name to parent.
func (c *Client) change(ctx context.Context, m wire.Method, req wire.Message, parent uint64, name string) (wire.ChangeResp, error) {
	var resp wire.ChangeResp
	if err := c.meta(ctx, m, req, &resp); err != nil {
		c.names.forget(parent)
		return resp, err
	}
	c.names.changed(parent, resp.ParentWas, resp.At, nameEdit{name, true})
	c.overlayDirty(&resp.Attr)
	return resp, nil
}

// Remove unlinks a file or removes an empty directory. A file this mount
// still has open survives its last unlink until its last close here.
func (c *Client) Remove(ctx context.Context, parent uint64, name string, dir bool) error {
	_, _, err := c.RemoveInDir(ctx, parent, name, dir)
	return err
}

// RemoveInDir is Remove that also returns the parent's new attributes,
// and those of the inode that lost the name (Ino 0 for a directory not
// open here).
func (c *Client) RemoveInDir(ctx context.Context, parent uint64, name string, dir bool) (parentAttr, gone wire.Attr, err error) {
	var resp wire.ChangeResp
	open := c.openInos()
	if err := c.meta(ctx, wire.MRemove, &wire.RemoveReq{Parent: parent, Name: name, Dir: dir, Open: open, Session: c.session}, &resp); err != nil {
		c.names.forget(parent)
		return wire.Attr{}, wire.Attr{}, err
	}
	c.names.changed(parent, resp.ParentWas, resp.At, nameEdit{name, false})
	return resp.Parent, resp.Attr, c.keptOpen(ctx, resp.Attr, open)
}

// Rename renames atomically; a replaced file is treated as by Remove.
func (c *Client) Rename(ctx context.Context, req *wire.RenameReq) error {
	_, _, _, err := c.RenameInDirs(ctx, req)
	return err
}

// RenameInDirs is Rename that also returns the new attributes of the old
// parent and, if it is another directory, the new parent (else Ino 0),
// and those of the inode the rename replaced, as RemoveInDir does.
func (c *Client) RenameInDirs(ctx context.Context, req *wire.RenameReq) (oldParent, newParent, replaced wire.Attr, err error) {
	var resp wire.ChangeResp
	req.Open, req.Session = c.openInos(), c.session
	if err := c.meta(ctx, wire.MRename, req, &resp); err != nil {
		c.names.forget(req.OldParent)
		c.names.forget(req.NewParent)
		return wire.Attr{}, wire.Attr{}, wire.Attr{}, err
	}
	c.renamed(req, &resp)
	return resp.Parent, resp.NewParent, resp.Attr, c.keptOpen(ctx, resp.Attr, req.Open)
}

// renamed applies a rename to what is kept of its directories' names.
// An exchange leaves both names in place.
func (c *Client) renamed(req *wire.RenameReq, resp *wire.ChangeResp) {
	var gone, came []nameEdit
	if req.Flags&wire.RenameExchange == 0 {
		gone, came = []nameEdit{{req.OldName, false}}, []nameEdit{{req.NewName, true}}
	}
	if req.NewParent == req.OldParent {
		c.names.changed(req.OldParent, resp.ParentWas, resp.At, append(gone, came...)...)
		return
	}
	c.names.changed(req.OldParent, resp.ParentWas, resp.At, gone...)
	c.names.changed(req.NewParent, resp.NewParentWas, resp.At, came...)
}

// ReadDir returns up to limit entries of directory ino after the name after.
func (c *Client) ReadDir(ctx context.Context, ino uint64, after string, limit int) (wire.ReadDirResp, error) {
	var resp wire.ReadDirResp
	err := c.meta(ctx, wire.MReadDir, &wire.ReadDirReq{Ino: ino, After: after, Limit: uint32(limit)}, &resp)
	for i := range resp.Entries {
		c.overlayDirty(&resp.Entries[i].Attr)
	}
	return resp, err
}

func (c *Client) Readlink(ctx context.Context, ino uint64) (string, error) {
	var resp wire.ReadlinkResp
	err := c.meta(ctx, wire.MReadlink, &wire.InoReq{Ino: ino}, &resp)
	return resp.Target, err
}

func (c *Client) StatFS(ctx context.Context) (wire.StatFSResp, error) {
	var resp wire.StatFSResp
	err := c.meta(ctx, wire.MStatFS, &wire.Empty{}, &resp)
	return resp, err
}

// SyncMeta makes every namespace change so far durable.
func (c *Client) SyncMeta(ctx context.Context) error {
	return c.meta(ctx, wire.MSync, &wire.Empty{}, &wire.Empty{})
}

// openFiles returns the files open on this mount now.
func (c *Client) openFiles() []*File {
	c.mu.Lock()
	defer c.mu.Unlock()
	files := make([]*File, 0, len(c.mu.files))
	for _, f := range c.mu.files {
		files = append(files, f)
	}
	return files
}

// FlushAll flushes every open file; a mount calls it before unmounting.
func (c *Client) FlushAll(ctx context.Context) error {
	var first error
	for _, f := range c.openFiles() {
		if err := f.Flush(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}
