package wire

import "github.com/cairn-fs/cairn/internal/block"

// PutReq stores a block. The chunkserver verifies that Data hashes to ID
// and has it on disk (fsynced) before it answers.
type PutReq struct {
	ID   block.ID
	Data []byte
}

func (m *PutReq) Append(b []byte) []byte { return append(m.AppendHead(b), m.Data...) }
func (m *PutReq) Decode(r *Reader)       { m.ID = r.ID(); m.Data = r.Bytes() }

// AppendHead and Payload make PutReq a Bulk message.
func (m *PutReq) AppendHead(b []byte) []byte {
	return AppendU32(AppendID(b, m.ID), uint32(len(m.Data)))
}
func (m *PutReq) Payload() []byte { return m.Data }

// GetResp is a Bulk message too.
func (m *GetResp) AppendHead(b []byte) []byte { return AppendU32(b, uint32(len(m.Data))) }
func (m *GetResp) Payload() []byte            { return m.Data }

// BlockReq names a block.
type BlockReq struct{ ID block.ID }

func (m *BlockReq) Append(b []byte) []byte { return AppendID(b, m.ID) }
func (m *BlockReq) Decode(r *Reader)       { m.ID = r.ID() }

// GetResp carries a block's content.
type GetResp struct{ Data []byte }

func (m *GetResp) Append(b []byte) []byte { return AppendBytes(b, m.Data) }
func (m *GetResp) Decode(r *Reader)       { m.Data = r.Bytes() }

// HasResp says whether a chunkserver holds a block.
type HasResp struct{ Has bool }

func (m *HasResp) Append(b []byte) []byte { return AppendBool(b, m.Has) }
func (m *HasResp) Decode(r *Reader)       { m.Has = r.Bool() }
