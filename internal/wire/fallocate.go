package wire

// Fallocate modes, as Linux's FALLOC_FL_* flags.
const (
	FallocKeepSize  uint32 = 0x01
	FallocPunchHole uint32 = 0x02
	FallocZeroRange uint32 = 0x10
)

// FallocateReq is fallocate(2) on inode Ino over [Off, Off+Len): mode 0
// grows the file to cover the range (cairn allocates nothing ahead: the
// range reads as zeros), FallocPunchHole (with FallocKeepSize) drops the
// range's data, FallocZeroRange drops it and, without FallocKeepSize,
// grows the file to cover it.
type FallocateReq struct {
	Ino      uint64
	Mode     uint32
	Off, Len uint64
}

func (m *FallocateReq) Append(b []byte) []byte {
	b = AppendU64(b, m.Ino)
	b = AppendU32(b, m.Mode)
	b = AppendU64(b, m.Off)
	return AppendU64(b, m.Len)
}

func (m *FallocateReq) Decode(r *Reader) {
	m.Ino = r.U64()
	m.Mode = r.U32()
	m.Off = r.U64()
	m.Len = r.U64()
}
