package fs_test

// The operations of the model-based tester (model_test.go): what an
// operation is, how it runs on one side (the cairn mount or the local
// reference directory), how its result is described for comparison, and
// how random operations are generated.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// modelSlots is how many descriptors a side can hold open at once.
const modelSlots = 6

// modelNames are the only names the generator uses, at every level, so
// that operations collide often (a name is a file one moment and a
// directory the next).
var modelNames = []string{"a", "b", "c", "d", "e", "f"}

const (
	modelKiB      = 1 << 10
	modelMiB      = 1 << 20
	modelBlock    = 4 * modelMiB // client block size (internal/block.MaxSize)
	modelMaxDepth = 3            // deepest directory the generator creates things in
)

type opKind uint8

const (
	opOpen opKind = iota
	opClose
	opWrite
	opPwrite
	opRead
	opPread
	opLseek
	opFtruncate
	opTruncate
	opFsync
	opFdatasync
	opRename
	opRenameNoReplace
	opRenameExchange
	opLink
	opLinkFD // linkat of /proc/self/fd/N: how an O_TMPFILE file gets its name
	opUnlink
	opMkdir
	opRmdir
	opSymlink
	opMknod // a FIFO, a socket or a regular file
	opReadlink
	opChmod
	opFchmod
	opChown
	opLchown
	opFchown
	opStat
	opLstat
	opFstat
	opReaddir
	opReadFile
	// Extended attributes and times (model_meta_ops_test.go).
	opSetxattr
	opFsetxattr
	opGetxattr
	opFgetxattr
	opListxattr
	opRemovexattr
	opUtimens
	opFutimens
	opFallocate // model_data_ops_test.go
	opSeekData  // SEEK_DATA or SEEK_HOLE (flags)
	opMmapWrite // a write through a shared mapping
	// Whole-run operations, executed by the pair runner (model_test.go).
	opCloseAll  // close every slot on both sides
	opCheckTree // compare the whole trees
	opRestart   // close everything, compare, restart the cluster, compare again
	nOpKinds
)

var opNames = [nOpKinds]string{
	opOpen: "open", opClose: "close", opWrite: "write", opPwrite: "pwrite", opRead: "read",
	opPread: "pread", opLseek: "lseek", opFtruncate: "ftruncate", opTruncate: "truncate",
	opFsync: "fsync", opFdatasync: "fdatasync", opRename: "rename",
	opRenameNoReplace: "rename-noreplace", opRenameExchange: "rename-exchange", opLink: "link", opLinkFD: "link-fd",
	opUnlink: "unlink", opMkdir: "mkdir", opRmdir: "rmdir", opSymlink: "symlink", opMknod: "mknod",
	opReadlink: "readlink", opChmod: "chmod", opFchmod: "fchmod", opChown: "chown",
	opLchown: "lchown", opFchown: "fchown", opStat: "stat", opLstat: "lstat", opFstat: "fstat",
	opReaddir: "readdir", opReadFile: "readfile", opCloseAll: "close-all",
	opFallocate: "fallocate", opSeekData: "seek-data", opMmapWrite: "mmap-write",
	opCheckTree: "check-tree", opRestart: "RESTART",
	opSetxattr: "setxattr", opFsetxattr: "fsetxattr", opGetxattr: "getxattr", opFgetxattr: "fgetxattr",
	opListxattr: "listxattr", opRemovexattr: "removexattr", opUtimens: "utimensat", opFutimens: "futimens",
}

func (k opKind) String() string { return opNames[k] }

// modelOp is one concrete operation. Every field is fixed at generation, so a
// sequence replays exactly (which the shrinker relies on).
type modelOp struct {
	kind     opKind
	slot     int    // descriptor slot
	path     string // relative to the side's root
	path2    string // rename/link destination; symlink target
	flags    int    // open flags; lseek whence
	mode     uint32 // open/mkdir/chmod mode
	off      int64  // pwrite/pread offset; lseek offset
	n        int64  // write/read length; truncate size
	seed     uint64 // write data
	uid, gid int    // chown

	xname string           // extended attribute name (model_meta_ops_test.go)
	times [2]unix.Timespec // utimensat atime, mtime
	user  int              // index in modelUsers: who runs it (model_meta_ops_test.go)
}

func (o modelOp) String() string {
	if o.user != 0 {
		as := o
		as.user = 0
		return modelUsers[o.user].name + ": " + as.String()
	}
	s := fmt.Sprintf("#%d", o.slot)
	if t, ok := o.metaString(s); ok {
		return t
	}
	switch o.kind {
	case opOpen:
		return fmt.Sprintf("open      %s %q %s %#o", s, o.path, modelOpenFlags(o.flags), o.mode)
	case opClose, opFsync, opFdatasync, opFstat:
		return fmt.Sprintf("%-9s %s", o.kind, s)
	case opWrite:
		return fmt.Sprintf("write     %s len=%s seed=%d", s, modelSizeString(o.n), o.seed)
	case opPwrite:
		return fmt.Sprintf("pwrite    %s off=%s len=%s seed=%d", s, modelSizeString(o.off), modelSizeString(o.n), o.seed)
	case opRead:
		return fmt.Sprintf("read      %s len=%s", s, modelSizeString(o.n))
	case opPread:
		return fmt.Sprintf("pread     %s off=%s len=%s", s, modelSizeString(o.off), modelSizeString(o.n))
	case opLseek:
		return fmt.Sprintf("lseek     %s %d %s", s, o.off, [...]string{"SEEK_SET", "SEEK_CUR", "SEEK_END"}[o.flags])
	case opFtruncate:
		return fmt.Sprintf("ftruncate %s %s", s, modelSizeString(o.n))
	case opTruncate:
		return fmt.Sprintf("truncate  %q %s", o.path, modelSizeString(o.n))
	case opRename, opRenameNoReplace, opRenameExchange, opLink:
		return fmt.Sprintf("%-9s %q -> %q", o.kind, o.path, o.path2)
	case opLinkFD:
		return fmt.Sprintf("link-fd   %s -> %q", s, o.path)
	case opSymlink:
		return fmt.Sprintf("symlink   %q -> target %q", o.path, o.path2)
	case opMkdir, opChmod:
		return fmt.Sprintf("%-9s %q %#o", o.kind, o.path, o.mode)
	case opMknod:
		return fmt.Sprintf("mknod     %q %s %#o", o.path, modelTypeName(o.mode), o.mode&0o7777)
	case opFchmod:
		return fmt.Sprintf("fchmod    %s %#o", s, o.mode)
	case opChown, opLchown:
		return fmt.Sprintf("%-9s %q %d:%d", o.kind, o.path, o.uid, o.gid)
	case opFchown:
		return fmt.Sprintf("fchown    %s %d:%d", s, o.uid, o.gid)
	case opCloseAll, opCheckTree, opRestart:
		return o.kind.String()
	case opFallocate, opSeekData, opMmapWrite:
		return o.dataString()
	default:
		return fmt.Sprintf("%-9s %q", o.kind, o.path)
	}
}

// modelSizeString prints a size, and also relative to a block boundary when it
// is near one, since those are the interesting ones.
func modelSizeString(n int64) string {
	if n >= modelBlock-64*modelKiB {
		k := (n + modelBlock/2) / modelBlock
		if d := n - k*modelBlock; d > -64*modelKiB && d < 64*modelKiB {
			return fmt.Sprintf("%d(%dMiB%+d)", n, k*4, d)
		}
	}
	return fmt.Sprint(n)
}

func modelOpenFlags(f int) string {
	var parts []string
	if f&unix.O_TMPFILE == unix.O_TMPFILE {
		parts = append(parts, "O_TMPFILE")
		f &^= unix.O_TMPFILE
	}
	switch f & unix.O_ACCMODE {
	case unix.O_RDONLY:
		parts = append(parts, "O_RDONLY")
	case unix.O_WRONLY:
		parts = append(parts, "O_WRONLY")
	case unix.O_RDWR:
		parts = append(parts, "O_RDWR")
	}
	for _, fl := range []struct {
		bit  int
		name string
	}{{unix.O_CREAT, "O_CREAT"}, {unix.O_EXCL, "O_EXCL"}, {unix.O_TRUNC, "O_TRUNC"},
		{unix.O_APPEND, "O_APPEND"}, {unix.O_DIRECTORY, "O_DIRECTORY"}, {unix.O_NOFOLLOW, "O_NOFOLLOW"}} {
		if f&fl.bit != 0 {
			parts = append(parts, fl.name)
		}
	}
	return strings.Join(parts, "|")
}

// opResult is what one side answered. Everything in it is compared.
type opResult struct {
	errno           syscall.Errno
	ret             int64  // byte count, offset
	text            string // stat fields, listing, link target, ...
	data            []byte // bytes read
	hasRet, hasData bool
	seek            int // SEEK_DATA or SEEK_HOLE: ret is compared by seekEqual
}

// equal compares cairn's result r with the local one o.
func (r opResult) equal(o opResult) bool {
	if r.seek != 0 || o.seek != 0 {
		return r.seekEqual(o)
	}
	return r.errno == o.errno && r.ret == o.ret && r.text == o.text && r.hasData == o.hasData &&
		(!r.hasData || slices.Equal(r.data, o.data))
}

func (r opResult) String() string {
	var parts []string
	if r.errno != 0 {
		parts = append(parts, fmt.Sprintf("%s (%d)", modelErrnoName(r.errno), int(r.errno)))
	} else {
		parts = append(parts, "ok")
	}
	if r.hasRet {
		parts = append(parts, fmt.Sprintf("ret=%d", r.ret))
	}
	if r.text != "" {
		parts = append(parts, r.text)
	}
	if r.hasData {
		parts = append(parts, fmt.Sprintf("data=%d bytes %s", len(r.data), modelDataSummary(r.data)))
	}
	return strings.Join(parts, " ")
}

func modelErrnoName(e syscall.Errno) string {
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return e.Error()
}

func modelDataSummary(b []byte) string {
	zero := 0
	for _, c := range b {
		if c == 0 {
			zero++
		}
	}
	const show = 12
	if len(b) <= show {
		return fmt.Sprintf("[% x]", b)
	}
	return fmt.Sprintf("[% x ...] (%d zero bytes)", b[:show], zero)
}

// modelDataDiff describes where two byte strings first differ.
func modelDataDiff(a, b []byte) string {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	if i == n && len(a) == len(b) {
		return "equal"
	}
	j := i
	for j < n && a[j] != b[j] {
		j++
	}
	win := func(x []byte) string {
		return fmt.Sprintf("% x", x[i:min(len(x), i+16)])
	}
	return fmt.Sprintf("lengths %d vs %d, first difference at byte %s (differing run up to %s): cairn [%s] local [%s]",
		len(a), len(b), modelSizeString(int64(i)), modelSizeString(int64(j)), win(a), win(b))
}

// modelData is the data a write of n bytes with this seed writes.
func modelData(seed uint64, n int64) []byte {
	b := make([]byte, n)
	x := seed*0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019
	for i := 0; i < len(b); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], x|0x0101010101010101) // no zero bytes: holes stand out
		copy(b[i:], w[:])
	}
	return b
}

// modelSide is one of the two filesystems under test.
type modelSide struct {
	name string
	root string // absolute path of this attempt's work directory
	fds  [modelSlots]int
	last opResult // of the last operation, for statistics
}

func newModelSide(name, root string) *modelSide {
	s := &modelSide{name: name, root: root}
	for i := range s.fds {
		s.fds[i] = -1
	}
	return s
}

// p resolves a relative path without cleaning it: "x/../y" and a
// trailing slash mean what they say.
func (s *modelSide) p(rel string) string { return s.root + "/" + rel }

// closeSlot closes a slot's descriptor; an empty slot gives EBADF.
func (s *modelSide) closeSlot(i int) syscall.Errno {
	fd := s.fds[i]
	s.fds[i] = -1
	if fd < 0 {
		return syscall.EBADF
	}
	return modelErrno(unix.Close(fd))
}

// closeAll closes every open slot and describes what close returned.
func (s *modelSide) closeAll() string {
	var out []string
	for i := range s.fds {
		if s.fds[i] >= 0 {
			out = append(out, fmt.Sprintf("#%d:%v", i, modelErrStr(s.closeSlot(i))))
		}
	}
	return strings.Join(out, " ")
}

func modelErrno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	panic(fmt.Sprintf("no errno in %T %v", err, err))
}

func modelErrStr(e syscall.Errno) string {
	if e == 0 {
		return "ok"
	}
	return modelErrnoName(e)
}

// exec runs o on s. It must only be given the per-side kinds.
func (s *modelSide) exec(o modelOp) opResult {
	if o.user != 0 {
		defer asModelUser(o.user)()
	}
	var r opResult
	fd := -1
	if o.slot >= 0 && o.slot < modelSlots {
		fd = s.fds[o.slot]
	}
	switch o.kind {
	case opOpen:
		// Reusing a slot closes what was in it first; that close is
		// compared too (it flushes on cairn).
		var closed syscall.Errno
		if s.fds[o.slot] >= 0 {
			closed = s.closeSlot(o.slot)
			r.text = "closed-old=" + modelErrStr(closed)
		}
		nfd, err := modelOpen(s.p(o.path), o.flags, o.mode)
		r.errno = modelErrno(err)
		if err == nil {
			s.fds[o.slot] = nfd
		}
	case opClose:
		r.errno = s.closeSlot(o.slot)
	case opWrite:
		n, err := unix.Write(fd, modelData(o.seed, o.n))
		r.errno, r.ret, r.hasRet = modelErrno(err), int64(n), true
	case opPwrite:
		n, err := unix.Pwrite(fd, modelData(o.seed, o.n), o.off)
		r.errno, r.ret, r.hasRet = modelErrno(err), int64(n), true
	case opRead, opPread:
		buf := make([]byte, o.n)
		var n int
		var err error
		if o.kind == opRead {
			n, err = unix.Read(fd, buf)
		} else {
			n, err = unix.Pread(fd, buf, o.off)
		}
		r.errno, r.ret, r.hasRet = modelErrno(err), int64(n), true
		if err == nil {
			r.data, r.hasData = buf[:n], true
		}
	case opLseek:
		// Offsets in a directory are cookies of the file system's own
		// choosing (ext4's SEEK_END in a hashed directory is 2^63-1):
		// only regular files are sought.
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil && err != unix.EBADF {
			r.errno, r.text = modelErrno(err), "(from the fstat before the lseek)"
			break
		} else if err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			r.text = "(directory: not sought)"
			break
		}
		off, err := unix.Seek(fd, o.off, o.flags)
		r.errno, r.ret, r.hasRet = modelErrno(err), off, true
	case opFtruncate:
		r.errno = modelErrno(unix.Ftruncate(fd, o.n))
	case opTruncate:
		r.errno = modelErrno(unix.Truncate(s.p(o.path), o.n))
	case opFsync:
		r.errno = modelErrno(unix.Fsync(fd))
	case opFdatasync:
		r.errno = modelErrno(unix.Fdatasync(fd))
	case opRename:
		r.errno = modelErrno(unix.Rename(s.p(o.path), s.p(o.path2)))
	case opRenameNoReplace:
		r.errno = modelErrno(unix.Renameat2(unix.AT_FDCWD, s.p(o.path), unix.AT_FDCWD, s.p(o.path2), unix.RENAME_NOREPLACE))
	case opRenameExchange:
		r.errno = modelErrno(unix.Renameat2(unix.AT_FDCWD, s.p(o.path), unix.AT_FDCWD, s.p(o.path2), unix.RENAME_EXCHANGE))
	case opLink:
		r.errno = modelErrno(unix.Link(s.p(o.path), s.p(o.path2)))
	case opLinkFD:
		if fd < 0 {
			r.errno = unix.EBADF
			break
		}
		r.errno = modelErrno(unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), unix.AT_FDCWD, s.p(o.path), unix.AT_SYMLINK_FOLLOW))
	case opUnlink:
		r.errno = modelErrno(unix.Unlink(s.p(o.path)))
	case opMkdir:
		r.errno = modelErrno(unix.Mkdir(s.p(o.path), o.mode))
	case opMknod:
		r.errno = modelErrno(unix.Mknod(s.p(o.path), o.mode, 0))
	case opRmdir:
		r.errno = modelErrno(unix.Rmdir(s.p(o.path)))
	case opSymlink:
		r.errno = modelErrno(unix.Symlink(o.path2, s.p(o.path)))
	case opReadlink:
		buf := make([]byte, 8192)
		n, err := unix.Readlink(s.p(o.path), buf)
		r.errno = modelErrno(err)
		if err == nil {
			r.text = fmt.Sprintf("target=%q", buf[:n])
		}
	case opChmod:
		r.errno = modelErrno(unix.Chmod(s.p(o.path), o.mode))
	case opFchmod:
		r.errno = modelErrno(unix.Fchmod(fd, o.mode))
	case opChown:
		r.errno = modelErrno(unix.Chown(s.p(o.path), o.uid, o.gid))
	case opLchown:
		r.errno = modelErrno(unix.Lchown(s.p(o.path), o.uid, o.gid))
	case opFchown:
		r.errno = modelErrno(unix.Fchown(fd, o.uid, o.gid))
	case opStat, opLstat, opFstat:
		var st unix.Stat_t
		var err error
		switch o.kind {
		case opStat:
			err = unix.Stat(s.p(o.path), &st)
		case opLstat:
			err = unix.Lstat(s.p(o.path), &st)
		default:
			err = unix.Fstat(fd, &st)
		}
		r.errno = modelErrno(err)
		if err == nil {
			r.text = modelStatString(&st)
		}
	case opReaddir:
		r.text, r.errno = modelListDir(s.p(o.path))
	case opReadFile:
		r.data, r.errno = modelReadAll(s.p(o.path), unix.O_RDONLY)
		r.hasData = r.errno == 0
	case opSetxattr, opFsetxattr, opGetxattr, opFgetxattr, opListxattr, opRemovexattr, opUtimens, opFutimens:
		r = s.execMeta(o, fd)
	case opFallocate, opSeekData, opMmapWrite:
		r = s.execData(o, fd)
	default:
		panic(fmt.Sprintf("modelSide.exec: %v", o.kind))
	}
	return r
}

// modelStatString has the stat fields that are compared. Not compared: inode
// numbers and device (different filesystems), timestamps (they differ
// by construction; model_test.go checks cairn's for sanity), st_blocks
// and st_blksize (allocation details), and a directory's st_size (ext4
// reports allocated directory blocks, cairn a constant 4096; POSIX
// leaves it unspecified).
func modelStatString(st *unix.Stat_t) string {
	t := modelTypeName(st.Mode)
	s := fmt.Sprintf("%s mode=%04o nlink=%d uid=%d gid=%d", t, st.Mode&0o7777, st.Nlink, st.Uid, st.Gid)
	if t != "dir" {
		s += fmt.Sprintf(" size=%d", st.Size)
	}
	return s
}

func modelTypeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "reg"
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFLNK:
		return "lnk"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "sock"
	default:
		return fmt.Sprintf("type%#o", mode&unix.S_IFMT)
	}
}

// modelListDir lists a directory with getdents64: the sorted names (without
// "." and "..") and their d_type.
func modelListDir(p string) (string, syscall.Errno) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", modelErrno(err)
	}
	defer unix.Close(fd)
	var ents []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return "", modelErrno(err)
		}
		if n == 0 {
			break
		}
		for off := 0; off < n; {
			reclen := int(binary.LittleEndian.Uint16(buf[off+16:]))
			typ := buf[off+18]
			name := buf[off+19 : off+reclen]
			if i := slices.Index(name, 0); i >= 0 {
				name = name[:i]
			}
			off += reclen
			if string(name) == "." || string(name) == ".." {
				continue
			}
			ents = append(ents, fmt.Sprintf("%s:%s", name, modelDtName(typ)))
		}
	}
	sort.Strings(ents)
	return "[" + strings.Join(ents, " ") + "]", 0
}

func modelDtName(t uint8) string {
	switch t {
	case unix.DT_REG:
		return "f"
	case unix.DT_DIR:
		return "d"
	case unix.DT_LNK:
		return "l"
	case unix.DT_UNKNOWN:
		return "?"
	}
	return fmt.Sprint(t)
}

// modelReadAll reads a whole file through a fresh descriptor.
// modelOpen opens p, without blocking if it is a FIFO: an open or a read
// of one would wait for the other end.
func modelOpen(p string, flags int, mode uint32) (int, error) {
	var st unix.Stat_t
	if unix.Stat(p, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO {
		flags |= unix.O_NONBLOCK
	}
	return unix.Open(p, flags|unix.O_CLOEXEC, mode)
}

func modelReadAll(p string, flags int) ([]byte, syscall.Errno) {
	fd, err := modelOpen(p, flags, 0)
	if err != nil {
		return nil, modelErrno(err)
	}
	var out []byte
	buf := make([]byte, 1*modelMiB)
	for {
		n, err := unix.Read(fd, buf)
		if err != nil {
			unix.Close(fd)
			return nil, modelErrno(err)
		}
		if n == 0 {
			break
		}
		out = append(out, buf[:n]...)
	}
	return out, modelErrno(unix.Close(fd))
}

// ---- generation ----

// modelGen makes random operations. It looks at the local (reference) side to
// aim most operations at names that exist, which keeps the run
// interesting; since the local side is deterministic, so is the
// sequence for a seed.
type modelGen struct {
	r    *rand.Rand
	seed uint64
	n    int // operations made so far

	// closedAt is when (in operations made) a slot last closed a
	// descriptor of an inode: see knownBugTruncateKeepsSize.
	closedAt map[modelInode]int
}

func newModelGen(seed uint64) *modelGen {
	return &modelGen{r: rand.New(rand.NewPCG(seed, seed^0xca1f)), seed: seed, closedAt: map[modelInode]int{}}
}

// modelEntry is one name that exists on the local side.
type modelEntry struct {
	rel   string // "." for the root
	typ   uint32 // S_IFMT bits
	depth int    // 0 for the root
	size  int64
}

func modelLocalEntries(root string) []modelEntry {
	ents := []modelEntry{{rel: ".", typ: unix.S_IFDIR}}
	var walk func(rel string, depth int)
	walk = func(rel string, depth int) {
		des, err := os.ReadDir(path.Join(root, rel))
		if err != nil {
			return
		}
		for _, de := range des {
			r := path.Join(rel, de.Name())
			var st unix.Stat_t
			if unix.Lstat(path.Join(root, r), &st) != nil {
				continue
			}
			ents = append(ents, modelEntry{rel: r, typ: st.Mode & unix.S_IFMT, depth: depth + 1, size: st.Size})
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				walk(r, depth+1)
			}
		}
	}
	walk(".", 0)
	return ents
}

func (g *modelGen) pct(p int) bool { return g.r.IntN(100) < p }

func (g *modelGen) name() string { return modelNames[g.r.IntN(len(modelNames))] }

func modelPick[T any](g *modelGen, xs []T) T { return xs[g.r.IntN(len(xs))] }

func modelFilter(ents []modelEntry, keep func(modelEntry) bool) []modelEntry {
	var out []modelEntry
	for _, e := range ents {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// existing picks an existing non-root entry whose type is one of types
// (any type if none), or "" if there is none.
func (g *modelGen) existing(ents []modelEntry, types ...uint32) string {
	c := modelFilter(ents, func(e modelEntry) bool { return e.rel != "." && (len(types) == 0 || slices.Contains(types, e.typ)) })
	if len(c) == 0 {
		return ""
	}
	return modelPick(g, c).rel
}

// fresh picks a (probably) new name in an existing directory that is
// not too deep.
func (g *modelGen) fresh(ents []modelEntry) string {
	dirs := modelFilter(ents, func(e modelEntry) bool { return e.typ == unix.S_IFDIR && e.depth < modelMaxDepth })
	d := modelPick(g, dirs).rel
	if d == "." {
		return g.name()
	}
	return d + "/" + g.name()
}

// anyPath picks a path for an operation: mostly existing names, some new
// names, a few paths through things that are not directories, and a few
// odd spellings.
func (g *modelGen) anyPath(ents []modelEntry, types ...uint32) string {
	switch r := g.r.IntN(100); {
	case r < 60:
		if p := g.existing(ents, types...); p != "" {
			return p
		}
		return g.fresh(ents)
	case r < 92:
		return g.fresh(ents)
	case r < 97:
		parts := make([]string, 1+g.r.IntN(3))
		for i := range parts {
			parts[i] = g.name()
		}
		return strings.Join(parts, "/")
	default:
		p := g.existing(ents)
		if p == "" {
			p = g.name()
		}
		switch g.r.IntN(4) {
		case 0:
			return p + "/" // a trailing slash on a non-directory is ENOTDIR
		case 1:
			return p + "/."
		case 2:
			return "."
		default:
			return g.name() + "/../" + p // through "..": the same place if that name is a directory
		}
	}
}

// slotFor picks a slot for an operation on a descriptor: mostly an open
// one that suits the operation (want is 'w' for writing to a regular
// file, 'r' for reading one, 0 for anything), sometimes any open one, a
// few times any slot at all (EBADF if it is empty).
func (g *modelGen) slotFor(local *modelSide, want byte) int {
	var open, suit []int
	for i, fd := range local.fds {
		if fd < 0 {
			continue
		}
		open = append(open, i)
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		var st unix.Stat_t
		if err != nil || unix.Fstat(fd, &st) != nil {
			continue
		}
		reg := st.Mode&unix.S_IFMT == unix.S_IFREG
		switch acc := fl & unix.O_ACCMODE; want {
		case 'w':
			if reg && acc != unix.O_RDONLY {
				suit = append(suit, i)
			}
		case 'r':
			if reg && acc != unix.O_WRONLY {
				suit = append(suit, i)
			}
		default:
			suit = append(suit, i)
		}
	}
	switch r := g.r.IntN(100); {
	case r < 80 && len(suit) > 0:
		return modelPick(g, suit)
	case r < 95 && len(open) > 0:
		return modelPick(g, open)
	}
	return g.r.IntN(modelSlots)
}

func (g *modelGen) fdSize(local *modelSide, slot int) int64 {
	var st unix.Stat_t
	if fd := local.fds[slot]; fd >= 0 && unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
		return st.Size
	}
	return 0
}

// offset is where a pwrite or pread goes: mostly inside or just past the
// file, sometimes well past it (a hole), sometimes near a block edge.
func (g *modelGen) offset(size int64) int64 {
	switch r := g.r.IntN(100); {
	case r < 50:
		return g.r.Int64N(size + 1)
	case r < 75:
		return size + g.r.Int64N(64*modelKiB)
	case r < 90:
		return g.nearBlockEdge()
	default:
		return g.r.Int64N(9 * modelMiB)
	}
}

func (g *modelGen) nearBlockEdge() int64 {
	return int64(1+g.r.IntN(2))*modelBlock + g.r.Int64N(600) - 300
}

// length is how much a write or read moves: mostly small.
func (g *modelGen) length() int64 {
	switch r := g.r.IntN(100); {
	case r < 4:
		return 0
	case r < 30:
		return 1 + g.r.Int64N(16)
	case r < 70:
		return 1 + g.r.Int64N(4*modelKiB)
	case r < 98:
		return 1 + g.r.Int64N(64*modelKiB)
	default:
		return 64*modelKiB + g.r.Int64N(modelMiB)
	}
}

func (g *modelGen) truncSize(size int64) int64 {
	switch r := g.r.IntN(100); {
	case r < 15:
		return 0
	case r < 40:
		return g.r.Int64N(size + 1)
	case r < 65:
		return size + g.r.Int64N(64*modelKiB)
	case r < 80:
		return g.nearBlockEdge()
	case r < 82:
		return -1 // EINVAL
	default:
		return g.r.Int64N(9 * modelMiB)
	}
}

var (
	fileModes = []uint32{0o644, 0o600, 0o755, 0o444, 0o000, 0o666, 0o4755, 0o2755, 0o2644, 0o1777, 0o7777}
	dirModes  = []uint32{0o755, 0o700, 0o777, 0o555, 0o2775, 0o1777, 0o3777, 0o000}
	owners    = []int{-1, 0, 1000, 1001, 65534}
)

func (g *modelGen) openFlags() int {
	f := []int{unix.O_RDONLY, unix.O_WRONLY, unix.O_RDWR, unix.O_RDWR}[g.r.IntN(4)]
	if g.pct(35) {
		f |= unix.O_CREAT
		if g.pct(25) {
			f |= unix.O_EXCL
		}
	}
	if g.pct(20) {
		f |= unix.O_TRUNC
	}
	if g.pct(20) {
		f |= unix.O_APPEND
	}
	if g.pct(3) {
		f |= unix.O_DIRECTORY
	}
	if g.pct(3) {
		f |= unix.O_NOFOLLOW
	}
	return f
}

func (g *modelGen) symlinkTarget() string {
	// At most one "..": the work directory's parent holds nothing but
	// the work directory, so a target can leave the tree by one level
	// and find nothing there, on both sides alike.
	switch r := g.r.IntN(100); {
	case r < 40:
		return g.name()
	case r < 60:
		return "../" + g.name()
	case r < 80:
		return g.name() + "/" + g.name()
	case r < 90:
		return "../" + g.name() + "/" + g.name()
	case r < 95:
		return "."
	default:
		return "no/such/" + strings.Repeat("x", g.r.IntN(200))
	}
}

// weights of the per-side operations.
var opWeights = []struct {
	k opKind
	w int
}{
	{opOpen, 14}, {opClose, 6}, {opWrite, 10}, {opPwrite, 12}, {opRead, 5}, {opPread, 9},
	{opLseek, 3}, {opFtruncate, 4}, {opTruncate, 3}, {opFsync, 3}, {opFdatasync, 1},
	{opRename, 6}, {opRenameNoReplace, 2}, {opRenameExchange, 3}, {opLink, 4}, {opLinkFD, 2}, {opUnlink, 5},
	{opMkdir, 5}, {opRmdir, 4}, {opSymlink, 3}, {opMknod, 2}, {opReadlink, 2}, {opChmod, 3}, {opFchmod, 1},
	{opChown, 2}, {opLchown, 1}, {opFchown, 1}, {opStat, 4}, {opLstat, 3}, {opFstat, 4},
	{opReaddir, 3}, {opReadFile, 2},
	{opSetxattr, 3}, {opFsetxattr, 1}, {opGetxattr, 3}, {opFgetxattr, 1}, {opListxattr, 2},
	{opRemovexattr, 2}, {opUtimens, 3}, {opFutimens, 1},
	{opReaddir, 3}, {opReadFile, 2}, {opFallocate, 4}, {opSeekData, 4}, {opMmapWrite, 3},
}

// next makes one random operation given the local side's state.
func (g *modelGen) next(local *modelSide) modelOp {
	total := 0
	for _, w := range opWeights {
		total += w.w
	}
	x := g.r.IntN(total)
	var k opKind
	for _, w := range opWeights {
		if x < w.w {
			k = w.k
			break
		}
		x -= w.w
	}
	ents := modelLocalEntries(local.root)
	o := modelOp{kind: k}
	switch k {
	case opWrite, opPwrite, opFtruncate, opFallocate, opMmapWrite:
		o.slot = g.slotFor(local, 'w')
	case opRead, opPread, opLseek, opSeekData:
		o.slot = g.slotFor(local, 'r')
	default:
		o.slot = g.slotFor(local, 0)
	}
	switch k {
	case opOpen:
		o.slot = g.r.IntN(modelSlots)
		o.flags = g.openFlags()
		o.mode = modelPick(g, fileModes)
		switch r := g.r.IntN(100); {
		case r < 50:
			o.path = g.existing(ents, unix.S_IFREG, unix.S_IFLNK)
		case r < 60: // a directory, to fstat, fsync, fchmod, ... (and remove) while open
			o.path = g.existing(ents, unix.S_IFDIR)
			o.flags &^= unix.O_ACCMODE | unix.O_TRUNC // anything else is EISDIR
			// Or a file with no name in it, to write and maybe link (link-fd).
			if g.pct(30) {
				o.flags = unix.O_TMPFILE | []int{unix.O_WRONLY, unix.O_RDWR}[g.r.IntN(2)]
				if g.pct(20) {
					o.flags |= unix.O_EXCL // never linkable
				}
			}
		case r < 82:
			o.path = g.fresh(ents)
			if g.pct(90) {
				o.flags |= unix.O_CREAT
			}
		}
		if o.path == "" {
			o.path = g.anyPath(ents)
		}
	case opWrite:
		o.n, o.seed = g.length(), g.r.Uint64()
		if g.pct(1) { // a write that fills a whole block and spills over
			o.n = modelBlock + g.r.Int64N(300*modelKiB)
		}
	case opPwrite:
		o.off, o.n, o.seed = g.offset(g.fdSize(local, o.slot)), g.length(), g.r.Uint64()
	case opRead:
		o.n = g.length()
	case opPread:
		o.off, o.n = g.offset(g.fdSize(local, o.slot)), g.length()
		if g.pct(5) {
			o.n = 5 * modelMiB
		}
	case opLseek:
		o.flags = g.r.IntN(3)
		o.off = g.r.Int64N(g.fdSize(local, o.slot)+100) - 50
	case opFtruncate:
		o.n = g.truncSize(g.fdSize(local, o.slot))
	case opTruncate:
		o.path = g.anyPath(ents, unix.S_IFREG, unix.S_IFLNK)
		var st unix.Stat_t
		if unix.Stat(local.p(o.path), &st) == nil {
			o.n = g.truncSize(st.Size)
		} else {
			o.n = g.truncSize(0)
		}
	case opRename, opRenameNoReplace, opRenameExchange, opLink:
		o.path = g.anyPath(ents)
		if g.pct(70) {
			if k == opLink {
				o.path = g.existing(ents, unix.S_IFREG, unix.S_IFLNK)
			} else {
				o.path = g.existing(ents)
			}
		}
		// Over an existing name (mostly, for an exchange) or to a new one
		// (mostly, for a link or a no-replace rename).
		over := map[opKind]int{opRename: 45, opRenameNoReplace: 25, opRenameExchange: 85, opLink: 15}[k]
		switch r := g.r.IntN(100); {
		case r < over:
			o.path2 = g.existing(ents)
		case r < 85:
			o.path2 = g.fresh(ents)
		case r < 93 && o.path != "": // into the source's subtree: a directory cannot go there
			o.path2 = o.path + "/" + g.name()
		}
		if o.path == "" {
			o.path = g.anyPath(ents)
		}
		if o.path2 == "" {
			o.path2 = g.anyPath(ents)
		}
	case opLinkFD:
		o.path = g.fresh(ents)
		if g.pct(20) || o.path == "" {
			o.path = g.anyPath(ents)
		}
	case opUnlink, opReadlink:
		o.path = g.anyPath(ents, unix.S_IFREG, unix.S_IFLNK)
	case opRmdir, opReaddir:
		o.path = g.anyPath(ents, unix.S_IFDIR)
	case opMkdir:
		o.path, o.mode = g.anyPath(ents), modelPick(g, dirModes)
		if g.pct(60) {
			o.path = g.fresh(ents)
		}
	case opMknod:
		o.path = g.fresh(ents)
		if g.pct(15) || o.path == "" {
			o.path = g.anyPath(ents)
		}
		o.mode = modelPick(g, []uint32{unix.S_IFIFO, unix.S_IFSOCK, unix.S_IFREG}) | modelPick(g, fileModes)
	case opSymlink:
		o.path, o.path2 = g.fresh(ents), g.symlinkTarget()
		if g.pct(15) {
			o.path = g.anyPath(ents)
		}
	case opChmod:
		o.path = g.anyPath(ents)
		o.mode = modelPick(g, append(fileModes, dirModes...))
	case opFchmod:
		o.mode = modelPick(g, append(fileModes, dirModes...))
	case opChown, opLchown, opFchown:
		o.path, o.uid, o.gid = g.anyPath(ents), modelPick(g, owners), modelPick(g, owners)
	case opStat, opLstat:
		o.path = g.anyPath(ents)
	case opReadFile:
		o.path = g.anyPath(ents, unix.S_IFREG)
	case opSetxattr, opFsetxattr, opGetxattr, opFgetxattr, opListxattr, opRemovexattr, opUtimens, opFutimens:
		g.metaOp(&o, ents, local)
	case opFallocate, opSeekData, opMmapWrite:
		g.dataOp(&o, local)
	}
	g.n++
	if o.kind == opClose || o.kind == opOpen { // an open reuses its slot: it closes what was there
		var st unix.Stat_t
		if fd := local.fds[o.slot]; fd >= 0 && unix.Fstat(fd, &st) == nil {
			g.closedAt[modelInode{st.Dev, st.Ino}] = g.n
		}
	}
	g.pickUser(&o)
	g.avoidKnownBugs(&o, local)
	g.avoidAmbiguousChown(&o, local)
	return o
}

// avoidAmbiguousChown turns a non-root chown to -1:-1 of a file this
// mount has open (or closed a moment ago) into a chown to the caller's
// own uid. FUSE sends that chown exactly as it sends a write's
// privilege drop, a SETATTR with nothing to set, and Linux refuses it
// (EPERM) when the caller is neither the owner nor in the group of a
// setgid file; cairn refuses it only while no descriptor is open for
// writing, when it cannot be a write's (killpriv.go).
func (g *modelGen) avoidAmbiguousChown(o *modelOp, local *modelSide) {
	if o.user == 0 || o.uid != -1 || o.gid != -1 {
		return
	}
	var st unix.Stat_t
	var err error
	switch o.kind {
	case opFchown:
		if local.fds[o.slot] < 0 {
			return
		}
		err = unix.Fstat(local.fds[o.slot], &st)
	case opChown:
		err = unix.Stat(local.p(o.path), &st)
	case opLchown:
		err = unix.Lstat(local.p(o.path), &st)
	default:
		return
	}
	if err == nil && g.busyInodes(local)[modelInode{st.Dev, st.Ino}] {
		o.uid = int(modelUsers[o.user].uid)
	}
}

// Known cairn bugs, which the generator steers around while they are
// open so that the rest of the run still means something. Each switch
// names the bug; set it to false to test for it (CAIRN_MODEL_OPS=10000
// finds either within a run or two).
const (
	// knownBugTruncateKeepsSize: client.File.Truncate (and so every
	// size-lowering setattr of a file this mount has open) leaves the
	// File's cached size (f.mu.size) at the old, larger value. The next
	// write marks the file dirty, and Dirty() then reports the stale size:
	// fstat shows the old size, and a read past the real end comes back
	// short at the wrong place, which the kernel takes as the new i_size,
	// so an O_APPEND write lands past the end and leaves a hole of zeros
	// (data corruption). While set, nothing lowers the size of a file
	// that is open in a slot or was closed in the last few operations
	// (busyInodes).
	knownBugTruncateKeepsSize = false
)

// modelInode identifies a file on the local side.
type modelInode struct{ dev, ino uint64 }

// busyInodes are the local inodes open in a slot, or closed in one
// during the last few operations: cairn's FUSE RELEASE is asynchronous,
// so the client may keep the file open for a moment after close(2)
// returned.
func (g *modelGen) busyInodes(local *modelSide) map[modelInode]bool {
	m := map[modelInode]bool{}
	for _, fd := range local.fds {
		var st unix.Stat_t
		if fd >= 0 && unix.Fstat(fd, &st) == nil {
			m[modelInode{st.Dev, st.Ino}] = true
		}
	}
	for k, at := range g.closedAt {
		if g.n-at <= 10 {
			m[k] = true
		} else {
			delete(g.closedAt, k)
		}
	}
	return m
}

// avoidKnownBugs changes o so that it does not trip over a known bug
// (see the knownBug switches).
func (g *modelGen) avoidKnownBugs(o *modelOp, local *modelSide) {
	var st unix.Stat_t
	fdStat := func() bool { return local.fds[o.slot] >= 0 && unix.Fstat(local.fds[o.slot], &st) == nil }
	if knownBugTruncateKeepsSize {
		switch o.kind {
		case opFtruncate:
			if fdStat() && o.n >= 0 && o.n < st.Size {
				o.n = st.Size + g.r.Int64N(4*modelKiB)
			}
		case opTruncate:
			if unix.Stat(local.p(o.path), &st) == nil && g.busyInodes(local)[modelInode{st.Dev, st.Ino}] &&
				o.n >= 0 && o.n < st.Size {
				o.n = st.Size + g.r.Int64N(4*modelKiB)
			}
		case opOpen:
			if o.flags&unix.O_TRUNC != 0 && unix.Stat(local.p(o.path), &st) == nil &&
				g.busyInodes(local)[modelInode{st.Dev, st.Ino}] && st.Size > 0 {
				o.flags &^= unix.O_TRUNC
			}
		}
	}
}
