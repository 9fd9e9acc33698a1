package wire

import "github.com/cairn-fs/cairn/internal/block"

// FsckResp is the result of a consistency check of the whole cluster.
// Problems are things that are wrong (missing or under-replicated blocks,
// counts that disagree); Notes are things that are expected to resolve
// themselves (blocks waiting for garbage collection). Each list is cut
// at a bound; the counts are always complete.
type FsckResp struct {
	Inodes, Dirs, Files, Extents, Blocks, Copies uint64
	ProblemCount, NoteCount                      uint64
	Problems, Notes                              []string
}

func (m *FsckResp) Append(b []byte) []byte {
	for _, v := range []uint64{m.Inodes, m.Dirs, m.Files, m.Extents, m.Blocks, m.Copies, m.ProblemCount, m.NoteCount} {
		b = AppendU64(b, v)
	}
	return appendStrings(appendStrings(b, m.Problems), m.Notes)
}

func (m *FsckResp) Decode(r *Reader) {
	for _, p := range []*uint64{&m.Inodes, &m.Dirs, &m.Files, &m.Extents, &m.Blocks, &m.Copies, &m.ProblemCount, &m.NoteCount} {
		*p = r.U64()
	}
	m.Problems = readStrings(r)
	m.Notes = readStrings(r)
}

func appendStrings(b []byte, ss []string) []byte {
	b = AppendU32(b, uint32(len(ss)))
	for _, s := range ss {
		b = AppendString(b, s)
	}
	return b
}

func readStrings(r *Reader) []string {
	ss := make([]string, r.Count(4))
	for i := range ss {
		ss[i] = r.String()
	}
	return ss
}

// FsckReq asks for a check; with Verify, every copy of every referenced
// block is read and hashed on its chunkserver (slow: it reads all data).
type FsckReq struct{ Verify bool }

func (m *FsckReq) Append(b []byte) []byte { return AppendBool(b, m.Verify) }
func (m *FsckReq) Decode(r *Reader)       { m.Verify = r.Bool() }

// VerifyReq asks a chunkserver to read and hash the blocks named.
type VerifyReq struct{ IDs []block.ID }

func (m *VerifyReq) Append(b []byte) []byte { return appendIDs(b, m.IDs) }
func (m *VerifyReq) Decode(r *Reader)       { m.IDs = readIDs(r) }

// VerifyResp lists the blocks that failed their hash (now quarantined)
// and those the chunkserver does not hold.
type VerifyResp struct{ Bad, Missing []block.ID }

func (m *VerifyResp) Append(b []byte) []byte { return appendIDs(appendIDs(b, m.Bad), m.Missing) }
func (m *VerifyResp) Decode(r *Reader)       { m.Bad = readIDs(r); m.Missing = readIDs(r) }
