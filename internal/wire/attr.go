package wire

import "time"

// Attr is an inode's attributes. Times are nanoseconds since the Unix epoch.
type Attr struct {
	Ino   uint64
	Mode  uint32 // file type and permission bits, as in stat(2)
	Uid   uint32
	Gid   uint32
	Nlink uint32
	Rdev  uint32
	Size  uint64
	Atime int64
	Mtime int64
	Ctime int64
	// Stored is how many bytes of a regular file's data its extents
	// hold: holes hold none, so a sparse file stores less than its
	// size (stat's st_blocks, which du and cp --sparse read).
	Stored uint64
}

const attrSize = 8 + 5*4 + 8 + 3*8 + 8

func (a *Attr) Append(b []byte) []byte {
	return AppendU64(a.AppendWithoutStored(b), a.Stored)
}

func (a *Attr) Decode(r *Reader) {
	a.DecodeWithoutStored(r)
	a.Stored = r.U64()
}

// AppendWithoutStored appends every field but Stored, which came later:
// the metaserver's inode records keep Stored after their own fields,
// where records written before it existed end.
func (a *Attr) AppendWithoutStored(b []byte) []byte {
	b = AppendU64(b, a.Ino)
	b = AppendU32(b, a.Mode)
	b = AppendU32(b, a.Uid)
	b = AppendU32(b, a.Gid)
	b = AppendU32(b, a.Nlink)
	b = AppendU32(b, a.Rdev)
	b = AppendU64(b, a.Size)
	b = AppendI64(b, a.Atime)
	b = AppendI64(b, a.Mtime)
	return AppendI64(b, a.Ctime)
}

// DecodeWithoutStored reads what AppendWithoutStored wrote.
func (a *Attr) DecodeWithoutStored(r *Reader) {
	a.Ino = r.U64()
	a.Mode = r.U32()
	a.Uid = r.U32()
	a.Gid = r.U32()
	a.Nlink = r.U32()
	a.Rdev = r.U32()
	a.Size = r.U64()
	a.Atime = r.I64()
	a.Mtime = r.I64()
	a.Ctime = r.I64()
}

// relatimeMaxAge is how old an atime may get before a read moves it
// even when it is after mtime and ctime (Linux's relatime).
const relatimeMaxAge = 24 * time.Hour

// NeedsAtime reports whether a read at now moves a's atime under Linux's
// relatime rule: when atime is not after mtime or ctime, or is a day old.
func NeedsAtime(a *Attr, now int64) bool {
	return a.Atime <= a.Mtime || a.Atime <= a.Ctime || now-a.Atime >= int64(relatimeMaxAge)
}
