package wire

import "github.com/cairn-fs/cairn/internal/block"

// Extent maps the file range [Off, Off+Len) onto bytes
// [BlockOff, BlockOff+Len) of a block. Ranges of a file that no extent
// covers are holes and read as zeros.
type Extent struct {
	Off      uint64
	Len      uint32
	Block    block.ID
	BlockOff uint32
	BlockLen uint32 // the whole block's length, for space accounting
}

const extentSize = 8 + 4 + 32 + 4 + 4

// End is the file offset just past the extent.
func (e Extent) End() uint64 { return e.Off + uint64(e.Len) }

func (e *Extent) Append(b []byte) []byte {
	b = AppendU64(b, e.Off)
	b = AppendU32(b, e.Len)
	b = AppendID(b, e.Block)
	b = AppendU32(b, e.BlockOff)
	return AppendU32(b, e.BlockLen)
}

func (e *Extent) Decode(r *Reader) {
	e.Off = r.U64()
	e.Len = r.U32()
	e.Block = r.ID()
	e.BlockOff = r.U32()
	e.BlockLen = r.U32()
}

// Valid reports whether the extent lies inside its block.
func (e *Extent) Valid() bool {
	return e.Len > 0 && e.BlockLen <= block.MaxSize &&
		uint64(e.BlockOff)+uint64(e.Len) <= uint64(e.BlockLen) &&
		e.Off+uint64(e.Len) >= e.Off
}

func appendExtents(b []byte, es []Extent) []byte {
	b = AppendU32(b, uint32(len(es)))
	for i := range es {
		b = es[i].Append(b)
	}
	return b
}

func readExtents(r *Reader) []Extent {
	n := r.Count(extentSize)
	es := make([]Extent, n)
	for i := range es {
		es[i].Decode(r)
	}
	return es
}
