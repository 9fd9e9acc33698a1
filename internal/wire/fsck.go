package wire

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
