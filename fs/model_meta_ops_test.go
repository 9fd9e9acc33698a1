package fs_test

// The model tester's operations on extended attributes and timestamps
// (see model_ops_test.go for the rest): how they print, run on one side
// and are generated.

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// modelXattrNames are the names the generator uses: few, so that they
// collide, with one of the longest allowed and one too long.
var modelXattrNames = []string{"user.a", "user.b", "trusted.t", "user." + strings.Repeat("n", 250)}

func (o modelOp) metaString(s string) (string, bool) {
	name := o.xname
	if len(name) > 20 {
		name = fmt.Sprintf("%s...(%d bytes)", name[:8], len(name))
	}
	follow := "follow"
	if o.flags&unix.AT_SYMLINK_NOFOLLOW != 0 {
		follow = "nofollow"
	}
	switch o.kind {
	case opSetxattr:
		return fmt.Sprintf("setxattr  %q %s %s len=%d seed=%d flags=%d", o.path, follow, name, o.n, o.seed, o.flags&^unix.AT_SYMLINK_NOFOLLOW), true
	case opFsetxattr:
		return fmt.Sprintf("fsetxattr %s %s len=%d seed=%d flags=%d", s, name, o.n, o.seed, o.flags), true
	case opGetxattr:
		return fmt.Sprintf("getxattr  %q %s %s size=%d", o.path, follow, name, o.n), true
	case opFgetxattr:
		return fmt.Sprintf("fgetxattr %s %s size=%d", s, name, o.n), true
	case opListxattr:
		return fmt.Sprintf("listxattr %q %s size=%d", o.path, follow, o.n), true
	case opRemovexattr:
		return fmt.Sprintf("removexattr %q %s %s", o.path, follow, name), true
	case opUtimens:
		return fmt.Sprintf("utimensat %q %s %s %s", o.path, follow, modelTimeString(o.times[0]), modelTimeString(o.times[1])), true
	case opFutimens:
		return fmt.Sprintf("futimens  %s %s %s", s, modelTimeString(o.times[0]), modelTimeString(o.times[1])), true
	}
	return "", false
}

func modelTimeString(t unix.Timespec) string {
	switch t.Nsec {
	case unix.UTIME_NOW:
		return "NOW"
	case unix.UTIME_OMIT:
		return "OMIT"
	}
	return fmt.Sprintf("%d.%09d", t.Sec, t.Nsec)
}

func (s *modelSide) execMeta(o modelOp, fd int) opResult {
	var r opResult
	nofollow := o.flags&unix.AT_SYMLINK_NOFOLLOW != 0
	p := s.p(o.path)
	switch o.kind {
	case opSetxattr, opFsetxattr:
		v := modelData(o.seed, o.n)
		var err error
		switch {
		case o.kind == opFsetxattr:
			err = unix.Fsetxattr(fd, o.xname, v, o.flags)
		case nofollow:
			err = unix.Lsetxattr(p, o.xname, v, o.flags&^unix.AT_SYMLINK_NOFOLLOW)
		default:
			err = unix.Setxattr(p, o.xname, v, o.flags)
		}
		r.errno = modelErrno(err)
	case opGetxattr, opFgetxattr:
		buf := make([]byte, o.n)
		var n int
		var err error
		switch {
		case o.kind == opFgetxattr:
			n, err = unix.Fgetxattr(fd, o.xname, buf)
		case nofollow:
			n, err = unix.Lgetxattr(p, o.xname, buf)
		default:
			n, err = unix.Getxattr(p, o.xname, buf)
		}
		r.errno, r.ret, r.hasRet = modelErrno(err), int64(n), true
		if err == nil && o.n > 0 {
			r.data, r.hasData = buf[:n], true
		}
	case opListxattr:
		buf := make([]byte, o.n)
		var n int
		var err error
		if nofollow {
			n, err = unix.Llistxattr(p, buf)
		} else {
			n, err = unix.Listxattr(p, buf)
		}
		r.errno, r.ret, r.hasRet = modelErrno(err), int64(n), true
		if err == nil && o.n > 0 {
			// The order of a listing is the file system's own.
			names := strings.Split(strings.TrimSuffix(string(buf[:n]), "\x00"), "\x00")
			slices.Sort(names)
			r.text = fmt.Sprintf("%q", names)
		}
	case opRemovexattr:
		if nofollow {
			r.errno = modelErrno(unix.Lremovexattr(p, o.xname))
		} else {
			r.errno = modelErrno(unix.Removexattr(p, o.xname))
		}
	case opUtimens, opFutimens:
		stat := func(st *unix.Stat_t) error {
			if o.kind == opFutimens {
				return unix.Fstat(fd, st)
			}
			if nofollow {
				return unix.Lstat(p, st)
			}
			return unix.Stat(p, st)
		}
		var before, after unix.Stat_t
		stat(&before)
		start := time.Now()
		var err error
		if o.kind == opFutimens {
			// futimens(2) is utimensat with a NULL path.
			_, _, e := syscall.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&o.times[0])), 0, 0, 0)
			if e != 0 {
				err = e
			}
		} else {
			err = unix.UtimesNanoAt(unix.AT_FDCWD, p, o.times[:], o.flags)
		}
		end := time.Now()
		r.errno = modelErrno(err)
		if err != nil || stat(&after) != nil {
			break
		}
		var parts []string
		for i, x := range []struct{ was, now unix.Timespec }{{before.Atim, after.Atim}, {before.Mtim, after.Mtim}} {
			what := [2]string{"atime", "mtime"}[i]
			switch t := time.Unix(x.now.Unix()); o.times[i].Nsec {
			case unix.UTIME_NOW:
				// The kernel's clock for file times is coarse: a jiffy.
				if t.Before(start.Add(-50*time.Millisecond)) || t.After(end.Add(50*time.Millisecond)) {
					parts = append(parts, fmt.Sprintf("%s=%v, not now", what, t))
				} else {
					parts = append(parts, what+"=now")
				}
			case unix.UTIME_OMIT:
				if x.now != x.was {
					parts = append(parts, fmt.Sprintf("%s changed from %v to %v", what, x.was, x.now))
				} else {
					parts = append(parts, what+" kept")
				}
			default:
				parts = append(parts, fmt.Sprintf("%s=%s", what, modelTimeString(x.now)))
			}
		}
		r.text = strings.Join(parts, " ")
	}
	return r
}

// modelXattrs describes a path's extended attributes for the tree
// comparison: names in order, with their values.
func modelXattrs(p string) string {
	buf := make([]byte, 1<<16)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return "listxattr: " + modelErrStr(modelErrno(err))
	}
	if n == 0 {
		return ""
	}
	names := strings.Split(strings.TrimSuffix(string(buf[:n]), "\x00"), "\x00")
	slices.Sort(names)
	var b strings.Builder
	for _, name := range names {
		v := make([]byte, 1<<16)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			fmt.Fprintf(&b, "%s:%s ", name, modelErrStr(modelErrno(err)))
			continue
		}
		fmt.Fprintf(&b, "%s=%s ", name, modelDataSummary(v[:m]))
	}
	return b.String()
}

// metaOp fills in an operation of this file.
func (g *modelGen) metaOp(o *modelOp, ents []modelEntry, local *modelSide) {
	o.path = g.anyPath(ents)
	if g.pct(30) {
		o.flags |= unix.AT_SYMLINK_NOFOLLOW
	}
	o.xname = modelPick(g, modelXattrNames)
	// Mostly aim reads and removals at attributes that exist.
	if (o.kind == opGetxattr || o.kind == opRemovexattr || o.kind == opFgetxattr) && g.pct(70) {
		if o.kind == opFgetxattr {
			if fd := local.fds[o.slot]; fd >= 0 {
				if names := modelListNames(func(b []byte) (int, error) { return unix.Flistxattr(fd, b) }); len(names) > 0 {
					o.xname = modelPick(g, names)
				}
			}
		} else {
			var with []string
			for _, e := range ents {
				if e.rel != "." && len(modelListNames(func(b []byte) (int, error) { return unix.Llistxattr(local.p(e.rel), b) })) > 0 {
					with = append(with, e.rel)
				}
			}
			if len(with) > 0 {
				o.path = modelPick(g, with)
				o.flags |= unix.AT_SYMLINK_NOFOLLOW
				o.xname = modelPick(g, modelListNames(func(b []byte) (int, error) { return unix.Llistxattr(local.p(o.path), b) }))
			}
		}
	}
	switch r := g.r.IntN(100); {
	case r < 2:
		o.xname = "user." + strings.Repeat("n", 251) // too long: ERANGE
	case r < 4:
		o.xname = "bogus.x" // no such namespace: EOPNOTSUPP
	}
	switch o.kind {
	case opSetxattr, opFsetxattr:
		if o.kind == opFsetxattr {
			o.flags = 0
		}
		o.seed = g.r.Uint64()
		switch r := g.r.IntN(100); {
		case r < 10:
			o.n = 0
		case r < 80:
			o.n = 1 + g.r.Int64N(32)
		default:
			o.n = 1 + g.r.Int64N(300) // ext4 keeps a few of these in one block
		}
		switch r := g.r.IntN(100); {
		case r < 20:
			o.flags |= unix.XATTR_CREATE
		case r < 40:
			o.flags |= unix.XATTR_REPLACE
		case r < 41:
			o.flags |= unix.XATTR_CREATE | unix.XATTR_REPLACE // EINVAL
		}
	case opGetxattr, opFgetxattr, opListxattr:
		o.n = []int64{0, 1, 8, 2000, 2000}[g.r.IntN(5)]
	case opUtimens, opFutimens:
		for i := range o.times {
			switch r := g.r.IntN(100); {
			case r < 30:
				o.times[i] = unix.Timespec{Nsec: unix.UTIME_NOW}
			case r < 55:
				o.times[i] = unix.Timespec{Nsec: unix.UTIME_OMIT}
			case r < 57:
				o.times[i] = unix.Timespec{Sec: 1, Nsec: 1_000_000_000} // EINVAL
			default:
				// From before ext4's earliest time (clamped on both sides)
				// to before the latest cairn holds (2262).
				o.times[i] = unix.Timespec{Sec: g.r.Int64N(12_000_000_000) - 3_000_000_000, Nsec: g.r.Int64N(1_000_000_000)}
			}
		}
		if o.kind == opFutimens {
			o.flags = 0
		}
	}
}

// modelListNames lists attribute names with list, in order.
func modelListNames(list func([]byte) (int, error)) []string {
	buf := make([]byte, 1<<16)
	n, err := list(buf)
	if err != nil || n == 0 {
		return nil
	}
	names := strings.Split(strings.TrimSuffix(string(buf[:n]), "\x00"), "\x00")
	slices.Sort(names)
	return names
}

// modelUsers run some operations: the test runs as root, and an
// operation of another user runs on a thread whose file system ids and
// groups are that user's and whose capabilities are dropped, so the
// kernel checks permissions as for that user on both sides. Their ids are among the owners chown gives files.
var modelUsers = []struct {
	name     string
	uid, gid uint32
	groups   []uint32
}{
	{"root", 0, 0, nil},
	{"u1000", 1000, 1000, []uint32{1000, 65534}},
	{"u1001", 1001, 1001, []uint32{1001}},
}

// pickUser makes a quarter of the operations run as an unprivileged user.
func (g *modelGen) pickUser(o *modelOp) {
	if g.pct(25) {
		o.user = 1 + g.r.IntN(len(modelUsers)-1)
	}
}

// asModelUser switches the calling thread to user u and returns what
// switches it back. Only this thread changes: the ids are set with raw
// system calls, not Go's, which change every thread.
func asModelUser(u int) (restore func()) {
	runtime.LockOSThread()
	groups := make([]uint32, 64)
	n, _, e := syscall.RawSyscall(unix.SYS_GETGROUPS, uintptr(len(groups)), uintptr(unsafe.Pointer(&groups[0])), 0)
	if e != 0 {
		panic(fmt.Sprintf("getgroups: %v", e))
	}
	groups = groups[:n]
	setGroups := func(gs []uint32) {
		var p uintptr
		if len(gs) > 0 {
			p = uintptr(unsafe.Pointer(&gs[0]))
		}
		if _, _, e := syscall.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(gs)), p, 0); e != 0 {
			panic(fmt.Sprintf("setgroups: %v", e))
		}
	}
	// The thread's capabilities: setfsuid drops only those for file
	// permissions, so the rest (CAP_SYS_ADMIN for trusted.* names, ...)
	// are taken out of the effective set too, and put back after.
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var caps [2]unix.CapUserData
	if err := unix.Capget(&hdr, &caps[0]); err != nil {
		panic(fmt.Sprintf("capget: %v", err))
	}
	user := modelUsers[u]
	setGroups(user.groups)
	syscall.RawSyscall(unix.SYS_SETFSGID, uintptr(user.gid), 0, 0)
	syscall.RawSyscall(unix.SYS_SETFSUID, uintptr(user.uid), 0, 0)
	none := caps
	none[0].Effective, none[1].Effective = 0, 0
	if err := unix.Capset(&hdr, &none[0]); err != nil {
		panic(fmt.Sprintf("capset: %v", err))
	}
	return func() {
		if err := unix.Capset(&hdr, &caps[0]); err != nil {
			panic(fmt.Sprintf("capset: %v", err))
		}
		syscall.RawSyscall(unix.SYS_SETFSUID, 0, 0, 0)
		syscall.RawSyscall(unix.SYS_SETFSGID, 0, 0, 0)
		setGroups(groups)
		runtime.UnlockOSThread()
	}
}
