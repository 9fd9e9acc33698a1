package metaserver

import (
	"syscall"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/wire"
)

// inode is what an I key holds. Attr.Stored comes last, after the
// inode's own fields: records written before it existed end before it
// (legacyStored), and opening the store counts their extents once
// (countStored in migrate.go).
type inode struct {
	wire.Attr
	Parent uint64 // directories only: the one directory that holds it
	Target string // symlinks only
	// legacyStored: the record had no Stored (read, never written).
	legacyStored bool
}

func (n *inode) Append(b []byte) []byte {
	b = n.Attr.AppendWithoutStored(b)
	b = wire.AppendU64(b, n.Parent)
	b = wire.AppendString(b, n.Target)
	return wire.AppendU64(b, n.Stored)
}

func (n *inode) Decode(r *wire.Reader) {
	n.Attr.DecodeWithoutStored(r)
	n.Parent = r.U64()
	n.Target = r.String()
	if n.legacyStored = r.Len() == 0; !n.legacyStored {
		n.Stored = r.U64()
	}
}

func (n *inode) isDir() bool { return n.Mode&syscall.S_IFMT == syscall.S_IFDIR }
func (n *inode) isReg() bool { return n.Mode&syscall.S_IFMT == syscall.S_IFREG }

// dentry is what a D key holds.
type dentry struct {
	Ino  uint64
	Mode uint32
}

func (d *dentry) Append(b []byte) []byte { return wire.AppendU32(wire.AppendU64(b, d.Ino), d.Mode) }
func (d *dentry) Decode(r *wire.Reader)  { d.Ino = r.U64(); d.Mode = r.U32() }

// ref is what an R key holds: how many extents name the block.
type ref struct {
	Count uint64
	Len   uint32
}

func (c *ref) Append(b []byte) []byte { return wire.AppendU32(wire.AppendU64(b, c.Count), c.Len) }
func (c *ref) Decode(r *wire.Reader)  { c.Count = r.U64(); c.Len = r.U32() }

// extentRecord is what an E key holds; the offset is in the key.
type extentRecord struct {
	Len      uint32
	Block    block.ID
	BlockOff uint32
	BlockLen uint32
}

func (e *extentRecord) Append(b []byte) []byte {
	b = wire.AppendU32(b, e.Len)
	b = wire.AppendID(b, e.Block)
	b = wire.AppendU32(b, e.BlockOff)
	return wire.AppendU32(b, e.BlockLen)
}

func (e *extentRecord) Decode(r *wire.Reader) {
	e.Len = r.U32()
	e.Block = r.ID()
	e.BlockOff = r.U32()
	e.BlockLen = r.U32()
}
