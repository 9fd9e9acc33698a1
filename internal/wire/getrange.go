package wire

import "github.com/cairn-fs/cairn/internal/block"

// GetRangeReq asks for bytes [Off, Off+Len) of a block as a verified
// slice (block.ExtractSlice): the answer is a GetResp whose Data the
// client checks with ID.VerifySlice, so a small read moves a few groups
// of the block instead of all of it.
type GetRangeReq struct {
	ID  block.ID
	Off uint32
	Len uint32
}

func (m *GetRangeReq) Append(b []byte) []byte {
	return AppendU32(AppendU32(AppendID(b, m.ID), m.Off), m.Len)
}
func (m *GetRangeReq) Decode(r *Reader) { m.ID = r.ID(); m.Off = r.U32(); m.Len = r.U32() }
