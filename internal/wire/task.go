package wire

import "github.com/cairn-fs/cairn/internal/block"

// Background work: the metaserver lists, copies, deletes and scrubs
// blocks on chunkservers; clients report bad replicas; `cairn status`
// reads the scheduler's counters.

// ListReq asks a chunkserver for the blocks it stores, in ID order,
// starting after After, at most Limit of them.
type ListReq struct {
	After block.ID
	Limit uint32
}

func (m *ListReq) Append(b []byte) []byte { return AppendU32(AppendID(b, m.After), m.Limit) }
func (m *ListReq) Decode(r *Reader)       { m.After = r.ID(); m.Limit = r.U32() }

// StoredBlock is one block on a chunkserver's disk. Size is what its file
// takes there: the block's length, or less when it is stored compressed,
// plus at most MaxStoredOverhead bytes of header. Age is how long ago (in
// nanoseconds, by the chunkserver's clock) it was last written or re-put,
// which is what the garbage collector's grace period counts from.
type StoredBlock struct {
	ID   block.ID
	Size uint32
	Age  int64
}

// MaxStoredOverhead bounds the header of a stored block's file
// (chunkserver/blockfile.go).
const MaxStoredOverhead = 16

// ListResp lists stored blocks; More says there are more after the last.
type ListResp struct {
	Blocks []StoredBlock
	More   bool
}

func (m *ListResp) Append(b []byte) []byte {
	b = AppendU32(b, uint32(len(m.Blocks)))
	for _, sb := range m.Blocks {
		b = AppendI64(AppendU32(AppendID(b, sb.ID), sb.Size), sb.Age)
	}
	return AppendBool(b, m.More)
}

func (m *ListResp) Decode(r *Reader) {
	m.Blocks = make([]StoredBlock, r.Count(32+4+8))
	for i := range m.Blocks {
		m.Blocks[i] = StoredBlock{ID: r.ID(), Size: r.U32(), Age: r.I64()}
	}
	m.More = r.Bool()
}

// DeleteReq deletes blocks from a chunkserver. A block written or re-put
// less than MinAge nanoseconds ago is kept: a writer may be about to
// commit a reference to it.
type DeleteReq struct {
	IDs    []block.ID
	MinAge int64
}

func (m *DeleteReq) Append(b []byte) []byte { return AppendI64(appendIDs(b, m.IDs), m.MinAge) }
func (m *DeleteReq) Decode(r *Reader)       { m.IDs = readIDs(r); m.MinAge = r.I64() }

// DeleteResp says how many blocks went and how many bytes that freed.
type DeleteResp struct {
	Deleted uint32
	Freed   uint64
}

func (m *DeleteResp) Append(b []byte) []byte { return AppendU64(AppendU32(b, m.Deleted), m.Freed) }
func (m *DeleteResp) Decode(r *Reader)       { m.Deleted = r.U32(); m.Freed = r.U64() }

// FetchReq tells a chunkserver to make sure it holds a good copy of ID,
// fetching it from the first of From (chunkserver addresses) that has a
// copy that verifies. A copy it already holds that verifies is kept.
type FetchReq struct {
	ID   block.ID
	From []string
}

func (m *FetchReq) Append(b []byte) []byte {
	b = AppendU32(AppendID(b, m.ID), uint32(len(m.From)))
	for _, a := range m.From {
		b = AppendString(b, a)
	}
	return b
}

func (m *FetchReq) Decode(r *Reader) {
	m.ID = r.ID()
	m.From = make([]string, r.Count(4))
	for i := range m.From {
		m.From[i] = r.String()
	}
}

// FetchResp says how many bytes crossed the network (0 if the copy was
// already there and good).
type FetchResp struct{ Moved uint64 }

func (m *FetchResp) Append(b []byte) []byte { return AppendU64(b, m.Moved) }
func (m *FetchResp) Decode(r *Reader)       { m.Moved = r.U64() }

// ScrubReq asks a chunkserver to re-hash its blocks after After, in ID
// order, until it has read MaxBytes (at its configured rate).
type ScrubReq struct {
	After    block.ID
	MaxBytes uint64
}

func (m *ScrubReq) Append(b []byte) []byte { return AppendU64(AppendID(b, m.After), m.MaxBytes) }
func (m *ScrubReq) Decode(r *Reader)       { m.After = r.ID(); m.MaxBytes = r.U64() }

// ScrubResp lists the blocks that failed their hash (now quarantined),
// where the scrub stopped (Next), and whether it reached the end.
type ScrubResp struct {
	Bad     []block.ID
	Next    block.ID
	Done    bool
	Checked uint32
	Bytes   uint64
}

func (m *ScrubResp) Append(b []byte) []byte {
	b = AppendID(appendIDs(b, m.Bad), m.Next)
	return AppendU64(AppendU32(AppendBool(b, m.Done), m.Checked), m.Bytes)
}

func (m *ScrubResp) Decode(r *Reader) {
	m.Bad = readIDs(r)
	m.Next = r.ID()
	m.Done = r.Bool()
	m.Checked = r.U32()
	m.Bytes = r.U64()
}

// BadReplicaReq reports that the chunkserver at Addr returned a copy of
// ID that failed verification (or an error other than not-found).
type BadReplicaReq struct {
	ID   block.ID
	Addr string
}

func (m *BadReplicaReq) Append(b []byte) []byte { return AppendString(AppendID(b, m.ID), m.Addr) }
func (m *BadReplicaReq) Decode(r *Reader)       { m.ID = r.ID(); m.Addr = r.String() }

// DrainReq asks the metaserver to move every block off the chunkserver
// with this ID or address, so that it can leave the cluster.
type DrainReq struct{ Node string }

func (m *DrainReq) Append(b []byte) []byte { return AppendString(b, m.Node) }
func (m *DrainReq) Decode(r *Reader)       { m.Node = r.String() }

// TaskCount is the scheduler's count of one kind of task.
type TaskCount struct {
	Kind                          string
	Queued, Running, Done, Failed uint64
}

// NodeTasks is the scheduler's view of one chunkserver.
type NodeTasks struct {
	ID       string
	Blocks   uint64 // blocks it held at the last reconcile pass
	Running  uint32 // tasks running on it now
	Scrubbed uint64 // bytes re-hashed in the current scrub round
}

// TasksResp is the state of the background work.
type TasksResp struct {
	Blocks          uint64 // referenced blocks at the last pass
	UnderReplicated uint64 // of those, with fewer than R good copies on up nodes
	Lost            uint64 // of those, with no copy on any node that answered
	Garbage         uint64 // blocks waiting out the grace period
	BytesMoved      uint64
	BytesReclaimed  uint64
	CorruptFound    uint64
	MoveNanos       int64 // time during which copies were running, for a rate
	LastPass        int64 // unix nanoseconds of the last completed pass (0: none yet)
	PassNanos       int64 // how long it took
	Kinds           []TaskCount
	Nodes           []NodeTasks
	// Space at the last pass: bytes the files' extents name, bytes of
	// their distinct blocks (less: deduplication), one copy of each on
	// disk (less: compression), and every copy on disk.
	FileBytes, BlockBytes, StoredBytes, DiskBytes uint64
}

func (m *TasksResp) Append(b []byte) []byte {
	for _, v := range []uint64{m.Blocks, m.UnderReplicated, m.Lost, m.Garbage, m.BytesMoved, m.BytesReclaimed, m.CorruptFound} {
		b = AppendU64(b, v)
	}
	b = AppendI64(AppendI64(AppendI64(b, m.MoveNanos), m.LastPass), m.PassNanos)
	b = AppendU32(b, uint32(len(m.Kinds)))
	for _, k := range m.Kinds {
		b = AppendString(b, k.Kind)
		for _, v := range []uint64{k.Queued, k.Running, k.Done, k.Failed} {
			b = AppendU64(b, v)
		}
	}
	b = AppendU32(b, uint32(len(m.Nodes)))
	for _, n := range m.Nodes {
		b = AppendU64(AppendU32(AppendU64(AppendString(b, n.ID), n.Blocks), n.Running), n.Scrubbed)
	}
	for _, v := range []uint64{m.FileBytes, m.BlockBytes, m.StoredBytes, m.DiskBytes} {
		b = AppendU64(b, v)
	}
	return b
}

func (m *TasksResp) Decode(r *Reader) {
	for _, p := range []*uint64{&m.Blocks, &m.UnderReplicated, &m.Lost, &m.Garbage, &m.BytesMoved, &m.BytesReclaimed, &m.CorruptFound} {
		*p = r.U64()
	}
	m.MoveNanos, m.LastPass, m.PassNanos = r.I64(), r.I64(), r.I64()
	m.Kinds = make([]TaskCount, r.Count(4+32))
	for i := range m.Kinds {
		k := &m.Kinds[i]
		k.Kind = r.String()
		k.Queued, k.Running, k.Done, k.Failed = r.U64(), r.U64(), r.U64(), r.U64()
	}
	m.Nodes = make([]NodeTasks, r.Count(4+8+4+8))
	for i := range m.Nodes {
		n := &m.Nodes[i]
		n.ID = r.String()
		n.Blocks, n.Running, n.Scrubbed = r.U64(), r.U32(), r.U64()
	}
	m.FileBytes, m.BlockBytes, m.StoredBytes, m.DiskBytes = r.U64(), r.U64(), r.U64(), r.U64()
}

func appendIDs(b []byte, ids []block.ID) []byte {
	b = AppendU32(b, uint32(len(ids)))
	for _, id := range ids {
		b = AppendID(b, id)
	}
	return b
}

func readIDs(r *Reader) []block.ID {
	ids := make([]block.ID, r.Count(32))
	for i := range ids {
		ids[i] = r.ID()
	}
	return ids
}

// TouchReq marks blocks as just written, so that the garbage collector
// keeps them for another grace period: a writer sends it before it
// commits blocks it uploaded a while ago.
type TouchReq struct{ IDs []block.ID }

func (m *TouchReq) Append(b []byte) []byte { return appendIDs(b, m.IDs) }
func (m *TouchReq) Decode(r *Reader)       { m.IDs = readIDs(r) }

// TouchResp lists the blocks the chunkserver does not hold.
type TouchResp struct{ Missing []block.ID }

func (m *TouchResp) Append(b []byte) []byte { return appendIDs(b, m.Missing) }
func (m *TouchResp) Decode(r *Reader)       { m.Missing = readIDs(r) }

// SettingsResp tells clients the metaserver settings they adapt to.
type SettingsResp struct {
	GCGrace int64 // nanoseconds an unreferenced block is kept
}

func (m *SettingsResp) Append(b []byte) []byte { return AppendI64(b, m.GCGrace) }
func (m *SettingsResp) Decode(r *Reader)       { m.GCGrace = r.I64() }
