package wire

import "github.com/cairn-fs/cairn/internal/cluster"

// Empty is the body of requests and responses that carry nothing.
type Empty struct{}

func (*Empty) Append(b []byte) []byte { return b }
func (*Empty) Decode(*Reader)         {}

// InoReq names one inode.
type InoReq struct{ Ino uint64 }

func (m *InoReq) Append(b []byte) []byte { return AppendU64(b, m.Ino) }
func (m *InoReq) Decode(r *Reader)       { m.Ino = r.U64() }

// AttrResp returns one inode's attributes.
type AttrResp struct{ Attr Attr }

func (m *AttrResp) Append(b []byte) []byte { return m.Attr.Append(b) }
func (m *AttrResp) Decode(r *Reader)       { m.Attr.Decode(r) }

// LookupReq finds Name in directory Parent.
type LookupReq struct {
	Parent uint64
	Name   string
}

func (m *LookupReq) Append(b []byte) []byte {
	return AppendString(AppendU64(b, m.Parent), m.Name)
}
func (m *LookupReq) Decode(r *Reader) { m.Parent = r.U64(); m.Name = r.String() }

// SetAttr flags say which fields of a SetAttrReq apply.
const (
	SetMode uint32 = 1 << iota
	SetUid
	SetGid
	SetSize
	SetAtime
	SetMtime
	SetAtimeNow
	SetMtimeNow
)

// SetAttrReq changes the attributes named in Valid; ctime becomes now.
type SetAttrReq struct {
	Ino          uint64
	Valid        uint32
	Mode         uint32 // permission bits only; the type never changes
	Uid, Gid     uint32
	Size         uint64
	Atime, Mtime int64
}

func (m *SetAttrReq) Append(b []byte) []byte {
	b = AppendU64(b, m.Ino)
	b = AppendU32(b, m.Valid)
	b = AppendU32(b, m.Mode)
	b = AppendU32(b, m.Uid)
	b = AppendU32(b, m.Gid)
	b = AppendU64(b, m.Size)
	b = AppendI64(b, m.Atime)
	return AppendI64(b, m.Mtime)
}

func (m *SetAttrReq) Decode(r *Reader) {
	m.Ino = r.U64()
	m.Valid = r.U32()
	m.Mode = r.U32()
	m.Uid = r.U32()
	m.Gid = r.U32()
	m.Size = r.U64()
	m.Atime = r.I64()
	m.Mtime = r.I64()
}

// MakeReq creates a file, directory, symlink or special file named Name
// in Parent; it fails with CodeExists if the name is taken.
type MakeReq struct {
	Parent   uint64
	Name     string
	Mode     uint32 // type and permission bits
	Uid, Gid uint32
	Rdev     uint32
	Target   string // symlink target
	// Umask is cleared from the permission bits unless Parent has a
	// default POSIX ACL, which then decides them instead (as Linux's
	// posix_acl_create).
	Umask uint32
}

func (m *MakeReq) Append(b []byte) []byte {
	b = AppendU64(b, m.Parent)
	b = AppendString(b, m.Name)
	b = AppendU32(b, m.Mode)
	b = AppendU32(b, m.Uid)
	b = AppendU32(b, m.Gid)
	b = AppendU32(b, m.Rdev)
	b = AppendString(b, m.Target)
	return AppendU32(b, m.Umask)
}

func (m *MakeReq) Decode(r *Reader) {
	m.Parent = r.U64()
	m.Name = r.String()
	m.Mode = r.U32()
	m.Uid = r.U32()
	m.Gid = r.U32()
	m.Rdev = r.U32()
	m.Target = r.String()
	m.Umask = r.U32()
}

// TmpfileReq creates a regular file with no name in directory Parent,
// as open's O_TMPFILE does: it is kept, with nlink 0, as an orphan of
// Session until the caller purges it (MPurge) or links it (MLink), which
// only such a file allows of the files with nlink 0.
type TmpfileReq struct {
	Parent   uint64
	Mode     uint32 // permission bits
	Uid, Gid uint32
	Umask    uint32 // as in MakeReq
	Session  uint64
}

func (m *TmpfileReq) Append(b []byte) []byte {
	b = AppendU64(b, m.Parent)
	b = AppendU32(b, m.Mode)
	b = AppendU32(b, m.Uid)
	b = AppendU32(b, m.Gid)
	b = AppendU32(b, m.Umask)
	return AppendU64(b, m.Session)
}

func (m *TmpfileReq) Decode(r *Reader) {
	m.Parent = r.U64()
	m.Mode = r.U32()
	m.Uid = r.U32()
	m.Gid = r.U32()
	m.Umask = r.U32()
	m.Session = r.U64()
}

// LinkReq adds the name Name in Parent for inode Ino.
type LinkReq struct {
	Ino, Parent uint64
	Name        string
}

func (m *LinkReq) Append(b []byte) []byte {
	return AppendString(AppendU64(AppendU64(b, m.Ino), m.Parent), m.Name)
}
func (m *LinkReq) Decode(r *Reader) { m.Ino = r.U64(); m.Parent = r.U64(); m.Name = r.String() }

// RemoveReq unlinks a file (Dir false) or removes an empty directory.
// Open lists the inodes the caller has open: one of them that loses its
// last link is kept, with nlink 0, until the caller purges it (MPurge) or
// the caller's Session expires.
type RemoveReq struct {
	Parent  uint64
	Name    string
	Dir     bool
	Open    []uint64
	Session uint64
}

func (m *RemoveReq) Append(b []byte) []byte {
	b = AppendBool(AppendString(AppendU64(b, m.Parent), m.Name), m.Dir)
	return AppendU64(appendInos(b, m.Open), m.Session)
}

func (m *RemoveReq) Decode(r *Reader) {
	m.Parent = r.U64()
	m.Name = r.String()
	m.Dir = r.Bool()
	m.Open = readInos(r)
	m.Session = r.U64()
}

func appendInos(b []byte, inos []uint64) []byte {
	b = AppendU32(b, uint32(len(inos)))
	for _, ino := range inos {
		b = AppendU64(b, ino)
	}
	return b
}

func readInos(r *Reader) []uint64 {
	inos := make([]uint64, r.Count(8))
	for i := range inos {
		inos[i] = r.U64()
	}
	return inos
}

// Rename flags, as renameat2(2).
const (
	RenameNoReplace uint32 = 1
	RenameExchange  uint32 = 2
)

// RenameReq moves OldParent/OldName to NewParent/NewName atomically.
type RenameReq struct {
	OldParent uint64
	OldName   string
	NewParent uint64
	NewName   string
	Flags     uint32
	Open      []uint64 // as in RemoveReq, for an inode the rename replaces
	Session   uint64   // as in RemoveReq
}

func (m *RenameReq) Append(b []byte) []byte {
	b = AppendU64(b, m.OldParent)
	b = AppendString(b, m.OldName)
	b = AppendU64(b, m.NewParent)
	b = AppendString(b, m.NewName)
	b = AppendU32(b, m.Flags)
	return AppendU64(appendInos(b, m.Open), m.Session)
}

func (m *RenameReq) Decode(r *Reader) {
	m.OldParent = r.U64()
	m.OldName = r.String()
	m.NewParent = r.U64()
	m.NewName = r.String()
	m.Flags = r.U32()
	m.Open = readInos(r)
	m.Session = r.U64()
}

// ReadDirReq lists directory Ino in name order, starting after the name
// After, returning at most Limit entries.
type ReadDirReq struct {
	Ino   uint64
	After string
	Limit uint32
}

func (m *ReadDirReq) Append(b []byte) []byte {
	return AppendU32(AppendString(AppendU64(b, m.Ino), m.After), m.Limit)
}
func (m *ReadDirReq) Decode(r *Reader) { m.Ino = r.U64(); m.After = r.String(); m.Limit = r.U32() }

// DirEntry is one name in a directory with its inode's attributes.
type DirEntry struct {
	Name string
	Attr Attr
}

// ReadDirResp holds a page of entries; More says whether any follow.
// Dir is the directory's attributes after a listing from the start,
// which may move its atime (relatime), else Ino 0: the kernel asks for
// them after every listing, and a mount need not ask the metaserver.
type ReadDirResp struct {
	Entries []DirEntry
	More    bool
	Dir     Attr
}

func (m *ReadDirResp) Append(b []byte) []byte {
	b = AppendU32(b, uint32(len(m.Entries)))
	for i := range m.Entries {
		b = AppendString(b, m.Entries[i].Name)
		b = m.Entries[i].Attr.Append(b)
	}
	return m.Dir.Append(AppendBool(b, m.More))
}

func (m *ReadDirResp) Decode(r *Reader) {
	m.Entries = make([]DirEntry, r.Count(4+attrSize))
	for i := range m.Entries {
		m.Entries[i].Name = r.String()
		m.Entries[i].Attr.Decode(r)
	}
	m.More = r.Bool()
	m.Dir.Decode(r)
}

// ReadlinkResp holds a symlink's target.
type ReadlinkResp struct{ Target string }

func (m *ReadlinkResp) Append(b []byte) []byte { return AppendString(b, m.Target) }
func (m *ReadlinkResp) Decode(r *Reader)       { m.Target = r.String() }

// CommitReq makes written data part of file Ino: the extents are applied
// in order over the file's layout, the size grows to cover them, mtime
// and ctime become Mtime. The metaserver syncs before it answers.
type CommitReq struct {
	Ino     uint64
	Extents []Extent
	Mtime   int64
}

func (m *CommitReq) Append(b []byte) []byte {
	b = AppendU64(b, m.Ino)
	b = appendExtents(b, m.Extents)
	return AppendI64(b, m.Mtime)
}

func (m *CommitReq) Decode(r *Reader) {
	m.Ino = r.U64()
	m.Extents = readExtents(r)
	m.Mtime = r.I64()
}

// ExtentsResp is a file's size and layout, extents in offset order.
//
// Attr is the file's attributes at the same moment, so that an open that
// fetches the layout needs no second round trip for them.
type ExtentsResp struct {
	Size    uint64
	Extents []Extent
	Attr    Attr
}

func (m *ExtentsResp) Append(b []byte) []byte {
	return m.Attr.Append(appendExtents(AppendU64(b, m.Size), m.Extents))
}
func (m *ExtentsResp) Decode(r *Reader) {
	m.Size = r.U64()
	m.Extents = readExtents(r)
	m.Attr.Decode(r)
}

// StatFSResp describes the filesystem's capacity. Bytes are usable bytes:
// raw chunkserver capacity divided by the replication factor.
type StatFSResp struct {
	Total, Free uint64
	Inodes      uint64
	Replicas    uint32
}

func (m *StatFSResp) Append(b []byte) []byte {
	b = AppendU64(b, m.Total)
	b = AppendU64(b, m.Free)
	b = AppendU64(b, m.Inodes)
	return AppendU32(b, m.Replicas)
}

func (m *StatFSResp) Decode(r *Reader) {
	m.Total = r.U64()
	m.Free = r.U64()
	m.Inodes = r.U64()
	m.Replicas = r.U32()
}

// HeartbeatReq announces a chunkserver and its disk usage.
type HeartbeatReq struct{ Node cluster.Node }

func (m *HeartbeatReq) Append(b []byte) []byte { return appendNode(b, &m.Node) }
func (m *HeartbeatReq) Decode(r *Reader)       { readNode(r, &m.Node) }

// MapResp is the cluster map and the replication factor.
type MapResp struct {
	Map      cluster.Map
	Replicas uint32
}

func (m *MapResp) Append(b []byte) []byte {
	b = AppendU64(b, m.Map.Epoch)
	b = AppendU32(b, m.Replicas)
	b = AppendU32(b, uint32(len(m.Map.Nodes)))
	for i := range m.Map.Nodes {
		b = appendNode(b, &m.Map.Nodes[i])
	}
	return b
}

func (m *MapResp) Decode(r *Reader) {
	m.Map.Epoch = r.U64()
	m.Replicas = r.U32()
	m.Map.Nodes = make([]cluster.Node, r.Count(4+4+8+1+8+8))
	for i := range m.Map.Nodes {
		readNode(r, &m.Map.Nodes[i])
	}
}

func appendNode(b []byte, n *cluster.Node) []byte {
	b = AppendString(b, n.ID)
	b = AppendString(b, n.Addr)
	b = AppendU64(b, n.Weight)
	b = AppendU8(b, uint8(n.State))
	b = AppendU64(b, n.Used)
	return AppendU64(b, n.Total)
}

func readNode(r *Reader, n *cluster.Node) {
	n.ID = r.String()
	n.Addr = r.String()
	n.Weight = r.U64()
	n.State = cluster.State(r.U8())
	n.Used = r.U64()
	n.Total = r.U64()
}

// ChangeResp answers a namespace change (make, link, remove, rename):
// Attr as the method says, and the attributes of the directories it
// changed, as the change left them, so that a client can answer the
// kernel's next GETATTR of them without another round trip. Parent is
// the (old) parent; NewParent is a rename's new parent when that is
// another directory, else Ino 0 (as is a directory the change did not
// touch).
//
// ParentWas and NewParentWas are the ctimes those directories had just
// before the change, and At the ctime the change gave them: a client that
// knows every name in a directory as of ctime ParentWas still knows them
// all after applying its change, as of At (client/dirnames.go).
type ChangeResp struct {
	Attr      Attr
	Parent    Attr
	NewParent Attr

	ParentWas, NewParentWas, At int64
}

func (m *ChangeResp) Append(b []byte) []byte {
	b = m.NewParent.Append(m.Parent.Append(m.Attr.Append(b)))
	b = AppendU64(b, uint64(m.ParentWas))
	b = AppendU64(b, uint64(m.NewParentWas))
	return AppendU64(b, uint64(m.At))
}
func (m *ChangeResp) Decode(r *Reader) {
	m.Attr.Decode(r)
	m.Parent.Decode(r)
	m.NewParent.Decode(r)
	m.ParentWas, m.NewParentWas, m.At = r.I64(), r.I64(), r.I64()
}
