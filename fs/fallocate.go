package fs

import (
	"syscall"

	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Fallocate supports what ext4 does short of moving data: mode 0 and
// KEEP_SIZE (nothing is reserved ahead: holes are free, so a later write
// can still fail with ENOSPC), PUNCH_HOLE and ZERO_RANGE. COLLAPSE_RANGE
// and INSERT_RANGE (which the kernel does not pass to FUSE anyway) and
// anything else get EOPNOTSUPP.
func (f *FS) Fallocate(_ <-chan struct{}, in *fuse.FallocateIn) fuse.Status {
	const supported = wire.FallocKeepSize | wire.FallocPunchHole | wire.FallocZeroRange
	if in.Mode&^supported != 0 {
		return fuse.Status(syscall.EOPNOTSUPP)
	}
	h := f.file(in.Fh)
	if h == nil {
		return fuse.EBADF
	}
	defer f.setAttr.changing()()
	_, err := h.f.Fallocate(ctx(), in.Mode, in.Offset, in.Length)
	return f.toStatus("fallocate", err)
}

// Lseek answers SEEK_DATA and SEEK_HOLE from the file's extents; the
// kernel answers the other whence values itself.
func (f *FS) Lseek(_ <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Status {
	const seekData, seekHole = 3, 4
	if in.Whence != seekData && in.Whence != seekHole {
		return fuse.EINVAL
	}
	h := f.file(in.Fh)
	if h == nil {
		return fuse.EBADF
	}
	pos, ok, err := h.f.Seek(ctx(), in.Offset, in.Whence == seekHole)
	if err != nil {
		return f.toStatus("lseek", err)
	}
	if !ok {
		return fuse.Status(syscall.ENXIO)
	}
	out.Offset = pos
	return fuse.OK
}
