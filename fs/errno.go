package fs

import (
	"context"
	"errors"
	"syscall"

	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// errnoOf maps wire codes to errnos. This is the only place where cairn
// errors become errnos.
var errnoOf = map[wire.Code]syscall.Errno{
	wire.CodeNotFound:    syscall.ENOENT,
	wire.CodeExists:      syscall.EEXIST,
	wire.CodeNotEmpty:    syscall.ENOTEMPTY,
	wire.CodeNotDir:      syscall.ENOTDIR,
	wire.CodeIsDir:       syscall.EISDIR,
	wire.CodeInvalid:     syscall.EINVAL,
	wire.CodeNoSpace:     syscall.ENOSPC,
	wire.CodeNameTooLong: syscall.ENAMETOOLONG,
	wire.CodePerm:        syscall.EPERM,
	wire.CodeNoData:      syscall.ENODATA,
	wire.CodeRange:       syscall.ERANGE,
	wire.CodeTooBig:      syscall.EFBIG,
	wire.CodeMlink:       syscall.EMLINK,
	wire.CodeNotSup:      syscall.EOPNOTSUPP,
	wire.CodeDeadlock:    syscall.EDEADLK,
	wire.CodeUnavailable: syscall.ETIMEDOUT,
}

// toStatus converts an error from the client into a FUSE status. Errors
// with no errno of their own are EIO: the application learns that the
// operation failed, and the log says why.
func (f *FS) toStatus(op string, err error) fuse.Status {
	if err == nil {
		return fuse.OK
	}
	var we *wire.Error
	if errors.As(err, &we) {
		if e, ok := errnoOf[we.Code]; ok {
			if e == syscall.ETIMEDOUT || e == syscall.ENOSPC {
				f.log.Error(op+" failed", "err", err)
			}
			return fuse.Status(e)
		}
	}
	if errors.Is(err, context.Canceled) {
		return fuse.EINTR
	}
	f.log.Error(op+" failed", "err", err)
	return fuse.EIO
}
