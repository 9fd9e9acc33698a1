package block

import (
	"bytes"
	"encoding/binary"

	"lukechampine.com/blake3/bao"
)

// A block can be read in verified slices, so a small read does not move
// a whole block: BLAKE3 is a tree hash, and a Bao slice carries the bytes
// of the range plus the tree nodes on the path from each to the root,
// which is the block's ID. A holder of the block keeps its outboard (the
// interior of the tree, about 1/256 of the block's size) to cut slices.

// SliceGroupLog is the Bao chunk-group size as a power of two over
// BLAKE3's 1 KiB chunks: a slice moves whole 16 KiB groups.
const SliceGroupLog = 4

// SliceGroup is the granularity of slices in bytes.
const SliceGroup = 1024 << SliceGroupLog

// Outboard computes data's Bao outboard and reports whether data hashes
// to id, so the outboard of a rotten copy is never kept.
func Outboard(id ID, data []byte) (outboard []byte, ok bool) {
	ob, root := bao.EncodeBuf(data, SliceGroupLog, true)
	return ob, ID(root) == id
}

// SumOutboard computes data's ID and its Bao outboard in one pass.
func SumOutboard(data []byte) (ID, []byte) {
	ob, root := bao.EncodeBuf(data, SliceGroupLog, true)
	return ID(root), ob
}

// AlignSlice widens [off, off+n) to whole groups within a block of size
// blockLen, the range a slice of it carries.
func AlignSlice(off, n, blockLen uint64) (alignedOff, alignedLen uint64) {
	lo := off / SliceGroup * SliceGroup
	hi := min((off+n+SliceGroup-1)/SliceGroup*SliceGroup, blockLen)
	return lo, hi - lo
}

// ExtractSlice encodes the slice [off, off+n) from groups, the block's
// bytes over AlignSlice(off, n), and the block's outboard.
func ExtractSlice(groups, outboard []byte, off, n uint64) ([]byte, error) {
	var buf bytes.Buffer
	// Room for the groups and the proof at once: growing by doubling
	// cost a tenth of a random reader's CPU (zeroing and copying).
	buf.Grow(len(groups) + len(outboard) + 8)
	err := bao.ExtractSlice(&buf, bytes.NewReader(groups), bytes.NewReader(outboard), SliceGroupLog, off, n)
	return buf.Bytes(), err
}

// VerifySlice checks a slice encoding of [off, off+n) against id and
// returns the verified bytes of the whole groups it carries (starting at
// the group boundary at or before off).
func (id ID) VerifySlice(slice []byte, off, n uint64) ([]byte, bool) {
	if len(slice) < 8 {
		return nil, false
	}
	// Ask bao for every byte of the carried groups, not just [off, off+n),
	// so that the caller can cache them whole. The slice starts with the
	// block's length, which the tree's shape (and so the ID) covers.
	lo, alen := AlignSlice(off, n, binary.LittleEndian.Uint64(slice))
	if alen == 0 || alen > MaxSize {
		return nil, false
	}
	// bao.VerifySlice, with the output sized up front (see ExtractSlice).
	in := bytes.NewBuffer(slice)
	var out bytes.Buffer
	out.Grow(int(alen))
	if ok, _ := bao.DecodeSlice(&out, in, SliceGroupLog, lo, alen, [32]byte(id)); !ok || in.Len() > 0 {
		return nil, false
	}
	return out.Bytes(), true
}
