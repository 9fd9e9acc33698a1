package fs

import (
	"errors"
	"sync"
	"time"

	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Extended attributes, POSIX ACLs among them. The kernel checks who may
// touch which namespace (user.* only on regular files and directories,
// trusted.* only with CAP_SYS_ADMIN) and, with FUSE_POSIX_ACL, parses,
// caches and enforces the ACLs; the metaserver keeps them and keeps the
// mode in step.

// capName is the attribute the kernel asks for before every write(2)
// by a process without CAP_FSETID (to learn whether the write must drop
// file capabilities). One metaserver round trip per write would make
// small writes four times slower, so its answers are cached per inode
// for the attribute timeout: another mount's change to it shows within
// that time, as its other attribute changes do.
const capName = "security.capability"

// capCache holds recent answers for capName.
type capCache struct {
	mu      sync.Mutex
	entries map[uint64]capEntry
}

type capEntry struct {
	value   []byte
	present bool
	at      time.Time
}

func (cc *capCache) get(ino uint64, ttl time.Duration) (capEntry, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	e, ok := cc.entries[ino]
	if ok && time.Since(e.at) > ttl {
		delete(cc.entries, ino)
		ok = false
	}
	return e, ok
}

func (cc *capCache) put(ino uint64, e capEntry) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.entries == nil || len(cc.entries) > 1<<16 {
		cc.entries = make(map[uint64]capEntry) // bounded: start over rather than grow
	}
	cc.entries[ino] = e
}

func (cc *capCache) forget(ino uint64) {
	cc.mu.Lock()
	delete(cc.entries, ino)
	cc.mu.Unlock()
}

func (f *FS) getXattr(ino uint64, name string) ([]byte, error) {
	if name != capName {
		return f.c.GetXattr(ctx(), ino, name)
	}
	if e, ok := f.caps.get(ino, f.timeout); ok {
		if !e.present {
			return nil, wire.Errorf(wire.CodeNoData, "no %s on inode %d", capName, ino)
		}
		return e.value, nil
	}
	v, err := f.c.GetXattr(ctx(), ino, name)
	switch {
	case err == nil:
		f.caps.put(ino, capEntry{value: v, present: true, at: time.Now()})
	case errors.Is(err, &wire.Error{Code: wire.CodeNoData}):
		f.caps.put(ino, capEntry{at: time.Now()})
	}
	return v, err
}

func (f *FS) GetXAttr(_ <-chan struct{}, h *fuse.InHeader, name string, dest []byte) (uint32, fuse.Status) {
	v, err := f.getXattr(h.NodeId, name)
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
	f.caps.forget(in.NodeId)
	return f.toStatus("setxattr", err)
}

func (f *FS) RemoveXAttr(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	_, err := f.c.RemoveXattr(ctx(), h.NodeId, name)
	f.caps.forget(h.NodeId)
	return f.toStatus("removexattr", err)
}
