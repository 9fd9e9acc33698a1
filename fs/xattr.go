package fs

import (
	"errors"
	"strings"
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

// The kernel asks for some attributes far more often than anyone sets
// them: security.capability before every write(2) by a process without
// CAP_FSETID (to learn whether the write must drop file capabilities),
// and the POSIX ACLs at permission checks by anyone but the owner. A
// metaserver round trip each time would make small writes four times
// slower and a non-owner's first access of a file twice as slow, so
// their answers are cached per inode for the attribute timeout: another
// mount's change to them shows within that time, as its other attribute
// changes do. This mount's own changes (setxattr, removexattr, chmod,
// which rewrites an ACL) drop the inode's entries at once.
var cachedXattrs = map[string]bool{
	"security.capability": true,
	wire.ACLAccess:        true,
	wire.ACLDefault:       true,
}

// xattrCache holds recent answers for cachedXattrs, at most
// maxXattrEntries of them and maxXattrBytes of values (an ACL can be
// 64 KiB): past either it starts over rather than grow.
type xattrCache struct {
	mu      sync.Mutex
	entries map[xattrKey]xattrEntry
	bytes   int // of the values in entries
}

const (
	maxXattrEntries = 1 << 16
	maxXattrBytes   = 8 << 20
)

type xattrKey struct {
	ino  uint64
	name string
}

type xattrEntry struct {
	value   []byte
	present bool
	at      time.Time
}

func (xc *xattrCache) get(k xattrKey, ttl time.Duration) (xattrEntry, bool) {
	xc.mu.Lock()
	defer xc.mu.Unlock()
	e, ok := xc.entries[k]
	if ok && time.Since(e.at) > ttl {
		delete(xc.entries, k)
		xc.bytes -= len(e.value)
		ok = false
	}
	return e, ok
}

func (xc *xattrCache) put(k xattrKey, e xattrEntry) {
	xc.mu.Lock()
	defer xc.mu.Unlock()
	if xc.entries == nil || len(xc.entries) >= maxXattrEntries || xc.bytes+len(e.value) > maxXattrBytes {
		xc.entries, xc.bytes = make(map[xattrKey]xattrEntry), 0
	}
	if old, ok := xc.entries[k]; ok {
		xc.bytes -= len(old.value)
	}
	xc.entries[k] = e
	xc.bytes += len(e.value)
}

// forget drops what is cached for ino.
func (xc *xattrCache) forget(ino uint64) {
	xc.mu.Lock()
	defer xc.mu.Unlock()
	for name := range cachedXattrs {
		k := xattrKey{ino, name}
		xc.bytes -= len(xc.entries[k].value)
		delete(xc.entries, k)
	}
}

// presence remembers whether the namespace held any of a kind of
// extended attribute (any at all; POSIX ACLs) when last asked. While it
// holds none, which is the common case, the kernel's questions about an
// inode's attributes of that kind are answered here, with no round trip
// per inode: ls -l asks for every file's security.selinux and ACL, cp -a
// lists every file's attributes, and the kernel asks for a file's ACL at
// permission checks. Another mount's first one is seen within the
// attribute timeout, as its other changes are.
type presence struct {
	ask func() (bool, error) // asks the metaserver

	mu  sync.Mutex
	any bool
	at  time.Time
}

// mayExist reports whether an inode may have an attribute of the kind,
// asking again once what is known is older than ttl.
func (p *presence) mayExist(ttl time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.at) > ttl {
		any, err := p.ask()
		if err != nil {
			return true // ask for the inode's own
		}
		p.any, p.at = any, time.Now()
	}
	return p.any
}

// saw notes that this mount is setting one: call it before the set, so
// that a question racing with the set goes to the metaserver.
func (p *presence) saw() {
	p.mu.Lock()
	p.any, p.at = true, time.Now()
	p.mu.Unlock()
}

func isACLName(name string) bool {
	return name == wire.ACLAccess || name == wire.ACLDefault
}

func (f *FS) getXattr(ino uint64, name string) ([]byte, error) {
	if err := wire.CheckXattrName(name); err != nil {
		return nil, err // what the metaserver would answer
	}
	if !f.anyXattrs.mayExist(f.timeout) {
		return nil, wire.Errorf(wire.CodeNoData, "no extended attribute in the namespace")
	}
	if !cachedXattrs[name] {
		return f.c.GetXattr(ctx(), ino, name)
	}
	if isACLName(name) && !f.acls.mayExist(f.timeout) {
		return nil, wire.Errorf(wire.CodeNoData, "no POSIX ACL in the namespace")
	}
	k := xattrKey{ino, name}
	if e, ok := f.xattrs.get(k, f.timeout); ok {
		if !e.present {
			return nil, wire.Errorf(wire.CodeNoData, "no %s on inode %d", name, ino)
		}
		return e.value, nil
	}
	v, err := f.c.GetXattr(ctx(), ino, name)
	switch {
	case err == nil:
		f.xattrs.put(k, xattrEntry{value: v, present: true, at: time.Now()})
	case errors.Is(err, &wire.Error{Code: wire.CodeNoData}):
		f.xattrs.put(k, xattrEntry{at: time.Now()})
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
	if !f.anyXattrs.mayExist(f.timeout) {
		return 0, fuse.OK
	}
	names, err := f.c.ListXattr(ctx(), h.NodeId)
	if err != nil {
		return 0, f.toStatus("listxattr", err)
	}
	var list []byte
	for _, n := range names {
		// As on a local file system, only a privileged caller sees the
		// trusted namespace (the kernel filters for those, not for
		// FUSE). Root stands for CAP_SYS_ADMIN here.
		if h.Uid != 0 && strings.HasPrefix(n, "trusted.") {
			continue
		}
		list = append(append(list, n...), 0)
	}
	if len(list) > len(dest) {
		return uint32(len(list)), fuse.ERANGE
	}
	return uint32(copy(dest, list)), fuse.OK
}

func (f *FS) SetXAttr(_ <-chan struct{}, in *fuse.SetXAttrIn, name string, data []byte) fuse.Status {
	defer f.setAttr.changing()()
	flags := in.Flags & (wire.XattrCreate | wire.XattrReplace)
	if in.SetXAttrFlags&fuse.SETXATTR_ACL_KILL_SGID != 0 {
		flags |= wire.XattrKillSgid
	}
	f.anyXattrs.saw()
	if isACLName(name) {
		f.acls.saw()
	}
	f.dirs.forget(in.NodeId) // an access ACL changes the mode
	_, err := f.c.SetXattr(ctx(), in.NodeId, name, data, flags)
	f.dirs.forget(in.NodeId)
	f.xattrs.forget(in.NodeId)
	return f.toStatus("setxattr", err)
}

func (f *FS) RemoveXAttr(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	defer f.setAttr.changing()()
	f.dirs.forget(h.NodeId)
	_, err := f.c.RemoveXattr(ctx(), h.NodeId, name)
	f.dirs.forget(h.NodeId)
	f.xattrs.forget(h.NodeId)
	return f.toStatus("removexattr", err)
}

// madeHere notes that this mount just created inode ino, which has no
// file capabilities yet (a new inode inherits only ACLs): the kernel asks
// for security.capability before the first write to it, and that answer
// then costs no metaserver round trip.
func (f *FS) madeHere(ino uint64) {
	f.xattrs.put(xattrKey{ino, "security.capability"}, xattrEntry{at: time.Now()})
}
