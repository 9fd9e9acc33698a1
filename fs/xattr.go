package fs

import (
	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Extended attributes, POSIX ACLs among them. The kernel checks who may
// touch which namespace (user.* only on regular files and directories,
// trusted.* only with CAP_SYS_ADMIN) and, with FUSE_POSIX_ACL, parses,
// caches and enforces the ACLs; the metaserver keeps them and keeps the
// mode in step.

func (f *FS) GetXAttr(_ <-chan struct{}, h *fuse.InHeader, name string, dest []byte) (uint32, fuse.Status) {
	v, err := f.c.GetXattr(ctx(), h.NodeId, name)
	if err != nil {
		return 0, f.toStatus("getxattr", err)
	}
	if len(v) > len(dest) {
		return uint32(len(v)), fuse.ERANGE // a size query (dest empty) gets the size
	}
	return uint32(copy(dest, v)), fuse.OK
}

func (f *FS) ListXAttr(_ <-chan struct{}, h *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	names, err := f.c.ListXattr(ctx(), h.NodeId)
	if err != nil {
		return 0, f.toStatus("listxattr", err)
	}
	var list []byte
	for _, n := range names {
		list = append(append(list, n...), 0)
	}
	if len(list) > len(dest) {
		return uint32(len(list)), fuse.ERANGE
	}
	return uint32(copy(dest, list)), fuse.OK
}

func (f *FS) SetXAttr(_ <-chan struct{}, in *fuse.SetXAttrIn, name string, data []byte) fuse.Status {
	flags := in.Flags & (wire.XattrCreate | wire.XattrReplace)
	if in.SetXAttrFlags&fuse.SETXATTR_ACL_KILL_SGID != 0 {
		flags |= wire.XattrKillSgid
	}
	_, err := f.c.SetXattr(ctx(), in.NodeId, name, data, flags)
	return f.toStatus("setxattr", err)
}

func (f *FS) RemoveXAttr(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	_, err := f.c.RemoveXattr(ctx(), h.NodeId, name)
	return f.toStatus("removexattr", err)
}
