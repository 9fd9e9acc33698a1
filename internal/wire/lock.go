package wire

// Lock kinds. POSIX (fcntl) byte-range locks and flock(2) locks live in
// separate tables and never conflict with each other, as on Linux.
const (
	LockPosix uint8 = iota
	LockFlock
)

// Lock types, numbered as Linux's F_RDLCK, F_WRLCK and F_UNLCK.
const (
	LockRead   uint8 = 0
	LockWrite  uint8 = 1
	LockUnlock uint8 = 2
)

// LockEnd is the last byte a lock can cover (OFFSET_MAX): a lock "to the
// end of the file" ends here. End offsets in locks are inclusive.
const LockEnd = 1<<63 - 1

// SessionReq opens or renews a client session (Session is chosen by the
// client, at random). A session that is not renewed within the TTL the
// response gives expires: its locks are dropped and the files it kept
// open after their last unlink are purged. End closes it at once.
type SessionReq struct {
	Session uint64
	End     bool
}

func (m *SessionReq) Append(b []byte) []byte {
	return AppendBool(AppendU64(b, m.Session), m.End)
}
func (m *SessionReq) Decode(r *Reader) { m.Session = r.U64(); m.End = r.Bool() }

// SessionResp tells the client how often it must renew its session.
type SessionResp struct {
	TTL int64 // nanoseconds
}

func (m *SessionResp) Append(b []byte) []byte { return AppendI64(b, m.TTL) }
func (m *SessionResp) Decode(r *Reader)       { m.TTL = r.I64() }

// LockReq tests (MGetLock) or sets (MSetLock) a lock on [Start, End] of
// inode Ino for the owner (Session, Owner). Wait asks MSetLock to wait
// for a conflicting lock to go, for a bounded time (see LockResp); Call
// names the wait (the client's number for it, the same on every retry),
// which MCancelLock, given the same Session and Call, ends.
type LockReq struct {
	Session    uint64
	Ino        uint64
	Owner      uint64
	Pid        uint32
	Kind       uint8 // LockPosix or LockFlock
	Type       uint8 // LockRead, LockWrite or LockUnlock
	Start, End uint64
	Wait       bool
	Call       uint64
}

func (m *LockReq) Append(b []byte) []byte {
	b = AppendU64(b, m.Session)
	b = AppendU64(b, m.Ino)
	b = AppendU64(b, m.Owner)
	b = AppendU32(b, m.Pid)
	b = AppendU8(b, m.Kind)
	b = AppendU8(b, m.Type)
	b = AppendU64(b, m.Start)
	b = AppendU64(b, m.End)
	b = AppendBool(b, m.Wait)
	return AppendU64(b, m.Call)
}

func (m *LockReq) Decode(r *Reader) {
	m.Session = r.U64()
	m.Ino = r.U64()
	m.Owner = r.U64()
	m.Pid = r.U32()
	m.Kind = r.U8()
	m.Type = r.U8()
	m.Start = r.U64()
	m.End = r.U64()
	m.Wait = r.Bool()
	m.Call = r.U64()
}

// LockResp answers a lock request. Conflict false: MSetLock took the lock
// (MGetLock: nothing conflicts). Conflict true: a lock of another owner,
// described by Type, Start, End and Pid, is in the way; for a waiting
// MSetLock it means the wait timed out and the client asks again.
// Mtime is the file's mtime when MSetLock took a lock: a client whose
// cached data is older drops it, so that what the previous holder wrote
// (and flushed before unlocking) is seen.
type LockResp struct {
	Conflict   bool
	Type       uint8
	Start, End uint64
	Pid        uint32
	Mtime      int64
}

func (m *LockResp) Append(b []byte) []byte {
	b = AppendBool(b, m.Conflict)
	b = AppendU8(b, m.Type)
	b = AppendU64(b, m.Start)
	b = AppendU64(b, m.End)
	b = AppendU32(b, m.Pid)
	return AppendI64(b, m.Mtime)
}

func (m *LockResp) Decode(r *Reader) {
	m.Conflict = r.Bool()
	m.Type = r.U8()
	m.Start = r.U64()
	m.End = r.U64()
	m.Pid = r.U32()
	m.Mtime = r.I64()
}
