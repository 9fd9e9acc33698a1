package metaserver

import "github.com/cairn-fs/cairn/internal/wire"

// fallocate changes a file's layout as fallocate(2) does. Holes read as
// zeros and store nothing, so allocating is only growing the size, and
// punching or zeroing a range is dropping its extents (the kernel has
// checked the mode combination; it is checked again here).
func (s *store) fallocate(req *wire.FallocateReq) (attr wire.Attr, err error) {
	const known = wire.FallocKeepSize | wire.FallocPunchHole | wire.FallocZeroRange
	punch := req.Mode&wire.FallocPunchHole != 0
	zero := req.Mode&wire.FallocZeroRange != 0
	keep := req.Mode&wire.FallocKeepSize != 0
	end := req.Off + req.Len
	switch {
	case req.Mode&^known != 0:
		return attr, wire.Errorf(wire.CodeInvalid, "fallocate mode %#x not supported", req.Mode)
	case req.Len == 0 || end < req.Off || end > wire.LockEnd:
		return attr, wire.Errorf(wire.CodeInvalid, "fallocate range %d+%d", req.Off, req.Len)
	case punch && (zero || !keep):
		return attr, wire.Errorf(wire.CodeInvalid, "fallocate mode %#x: punch needs keep-size alone", req.Mode)
	}
	err = s.update(func(tx *txn) error {
		n, err := tx.getInode(req.Ino)
		if err != nil {
			return err
		}
		if n.isDir() {
			return wire.Errorf(wire.CodeIsDir, "fallocate inode %d", n.Ino)
		}
		if !n.isReg() {
			return wire.Errorf(wire.CodeInvalid, "fallocate inode %d: not a regular file", n.Ino)
		}
		if punch || zero {
			if err := tx.punch(n, req.Off, end); err != nil {
				return err
			}
		}
		if !keep {
			n.Size = max(n.Size, end)
		}
		n.Mtime, n.Ctime = tx.now, tx.now
		attr = n.Attr
		return tx.putInode(n)
	})
	return attr, err
}
