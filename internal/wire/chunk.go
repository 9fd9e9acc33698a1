package wire

import "github.com/cairn-fs/cairn/internal/block"

// PutReq stores a block. The chunkserver verifies that Data hashes to ID
// and has it on disk (fsynced) before it answers.
type PutReq struct {
	ID   block.ID
	Data []byte
}

func (m *PutReq) Append(b []byte) []byte { return AppendBytes(AppendID(b, m.ID), m.Data) }
func (m *PutReq) Decode(r *Reader)       { m.ID = r.ID(); m.Data = r.Bytes() }

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
