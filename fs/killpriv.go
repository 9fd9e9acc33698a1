package fs

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// When a write or truncate by a caller without CAP_FSETID must drop
// privileges, the kernel's FUSE code turns that into a SETATTR that
// clears setuid, and setgid only when the group may execute. Linux's
// local file systems also clear a setgid bit without group execute when
// the caller is not in the file's group; the kernel then sends a SETATTR
// with nothing to set, or only the size. dropSgid adds that rule.

// A SETATTR with nothing to set also comes from chown(fd, -1, -1), which
// Linux refuses with EPERM to a caller who is not the owner when it
// would have to clear such a setgid bit. The two look alike; a write
// needs a descriptor open for writing, so without one the request is
// taken for the chown and refused.

// A chown by a caller without CAP_FSETID who is not in the file's group
// clears such a setgid bit too on Linux (setattr_should_drop_sgid); the
// kernel's FUSE code passes the chown on with the bit kept.
// chownDropsSgid adds that rule to the chown's own request.

// noAttrs is the Valid bits of a SETATTR with nothing to set.
const noAttrs = fuse.FATTR_FH | fuse.FATTR_LOCKOWNER | fuse.FATTR_CTIME

// refuseChown reports whether in is such a chown, to be refused.
func (f *FS) refuseChown(in *fuse.SetAttrIn) bool {
	if in.Caller.Uid == 0 || in.Valid&^noAttrs != 0 || f.openForWrite(in.NodeId) {
		return false
	}
	a, err := f.c.GetAttr(ctx(), in.NodeId)
	return err == nil && a.Uid != in.Caller.Uid && needsSgidDrop(in, a)
}

// openForWrite reports whether this mount has ino open for writing.
func (f *FS) openForWrite(ino uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range f.mu.files {
		if h.f.Ino() == ino && h.flags&syscall.O_ACCMODE != syscall.O_RDONLY {
			return true
		}
	}
	return false
}

// privDropShape is the Valid bits such a SETATTR can carry.
const privDropShape = fuse.FATTR_MODE | fuse.FATTR_SIZE | fuse.FATTR_FH | fuse.FATTR_LOCKOWNER | fuse.FATTR_CTIME | fuse.FATTR_KILL_SUIDGID

// dropSgid clears the setgid bit of a, the attributes after a SETATTR by
// in's caller, if Linux would have: the caller is not root (standing for
// CAP_FSETID), the request could be a privilege drop (a chmod by a
// non-member cannot keep setgid: the kernel strips it first), and the
// caller is not in the file's group.
func (f *FS) dropSgid(in *fuse.SetAttrIn, a wire.Attr) (wire.Attr, error) {
	if !needsSgidDrop(in, a) {
		return a, nil
	}
	return f.c.SetAttr(ctx(), &wire.SetAttrReq{Ino: a.Ino, Valid: wire.SetMode, Mode: a.Mode & 0o7777 &^ syscall.S_ISGID})
}

func needsSgidDrop(in *fuse.SetAttrIn, a wire.Attr) bool {
	// in.Uid is the owner to set; the caller's is in.Caller.
	return in.Valid&^privDropShape == 0 && a.Mode&syscall.S_IFMT == syscall.S_IFREG && losesSgid(in.Caller, a.Mode, a.Gid)
}

// losesSgid is Linux's rule for a file of mode and group gid changed by
// c: a setgid bit without group execute goes unless c is root (standing
// for CAP_FSETID) or in the group.
func losesSgid(c fuse.Caller, mode, gid uint32) bool {
	return c.Uid != 0 && mode&(syscall.S_ISGID|syscall.S_IXGRP) == syscall.S_ISGID && !inGroup(c, gid)
}

// inGroup reports whether the caller's group or one of its supplementary
// groups is gid. The groups are read from /proc (of the calling thread);
// if they cannot be, the caller counts as a member, which keeps the bit.
func inGroup(c fuse.Caller, gid uint32) bool {
	if c.Gid == gid {
		return true
	}
	groups, err := procGroups(c.Pid)
	if err != nil {
		return true
	}
	return slices.Contains(groups, gid)
}

func procGroups(pid uint32) ([]uint32, error) {
	if pid == 0 {
		return nil, fmt.Errorf("no caller pid")
	}
	fh, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "Groups:")
		if !ok {
			continue
		}
		var groups []uint32
		for _, g := range strings.Fields(rest) {
			n, err := strconv.ParseUint(g, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("/proc/%d/status: groups %q", pid, rest)
			}
			groups = append(groups, uint32(n))
		}
		return groups, nil
	}
	return nil, fmt.Errorf("/proc/%d/status: no Groups line", pid)
}

// chownDropsSgid clears the setgid bit in req, a chown by in's caller, if
// Linux would (losesSgid, with the group the file had before the chown):
// for any file but a directory.
func (f *FS) chownDropsSgid(in *fuse.SetAttrIn, req *wire.SetAttrReq) error {
	if in.Caller.Uid == 0 || req.Valid&(wire.SetUid|wire.SetGid) == 0 {
		return nil
	}
	a, err := f.c.GetAttr(ctx(), in.NodeId)
	if err != nil {
		return err
	}
	mode := a.Mode & 0o7777
	if req.Valid&wire.SetMode != 0 {
		mode = req.Mode & 0o7777
	}
	if a.Mode&syscall.S_IFMT == syscall.S_IFDIR || !losesSgid(in.Caller, mode, a.Gid) {
		return nil
	}
	req.Valid |= wire.SetMode
	req.Mode = mode &^ syscall.S_ISGID
	return nil
}
