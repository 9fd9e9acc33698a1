package metaserver

import (
	"container/heap"
	"slices"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/wire"
)

// commit applies written extents, in order (a later one wins where they
// overlap), over a file's layout; the file grows to cover them and its
// mtime and ctime become mtime.
//
// A commit may carry tens of thousands of small extents (random writes).
// It is applied in one pass: the writes are resolved among themselves in
// memory, the extents they cover are read with one iterator before the
// transaction writes anything (Badger sorts a transaction's pending
// writes for every iterator it opens, which made one iterator per extent
// quadratic), and reference counts change once per block.
func (s *store) commit(req *wire.CommitReq) (attr wire.Attr, err error) {
	for i := range req.Extents {
		if !req.Extents[i].Valid() {
			return attr, wire.Errorf(wire.CodeInvalid, "extent %d lies outside its block", i)
		}
	}
	pieces := resolveWrites(req.Extents)
	err = s.update(func(tx *txn) error {
		n, err := tx.getInode(req.Ino)
		if err != nil {
			return err
		}
		if !n.isReg() {
			return wire.Errorf(wire.CodeInvalid, "write to inode %d: not a regular file", n.Ino)
		}
		if len(pieces) > 0 {
			if err := tx.overwrite(n, pieces); err != nil {
				return err
			}
			n.Size = max(n.Size, pieces[len(pieces)-1].End())
		}
		if req.Mtime != 0 {
			n.Mtime, n.Ctime = req.Mtime, max(req.Mtime, n.Ctime)
		}
		attr = n.Attr
		return tx.putInode(n)
	})
	return attr, err
}

// overwrite replaces n's layout under pieces (sorted, not overlapping)
// with them: extents they cover go, those they partly cover are trimmed
// or split, and block reference counts and n.Stored follow.
func (tx *txn) overwrite(n *inode, pieces []wire.Extent) error {
	ino := n.Ino
	var old []wire.Extent
	var stored int64 // the change to n.Stored
	to := pieces[len(pieces)-1].End()
	err := tx.extents(ino, pieces[0].Off, func(e wire.Extent) (bool, error) {
		if e.Off >= to {
			return false, nil
		}
		old = append(old, e)
		return true, nil
	})
	if err != nil {
		return err
	}
	type refDelta struct {
		delta    int
		blockLen uint32
	}
	refs := make(map[block.ID]*refDelta)
	ref := func(e wire.Extent, delta int) {
		r := refs[e.Block]
		if r == nil {
			r = &refDelta{blockLen: e.BlockLen}
			refs[e.Block] = r
		}
		r.delta += delta
	}
	keep := func(e wire.Extent, lo, hi uint64) error {
		e.BlockOff += uint32(lo - e.Off)
		e.Off, e.Len = lo, uint32(hi-lo)
		ref(e, 1)
		stored += int64(e.Len)
		return tx.putExtent(ino, e)
	}
	j := 0
	for _, e := range old {
		for j < len(pieces) && pieces[j].End() <= e.Off {
			j++
		}
		pos := e.Off
		covered := false
		for k := j; k < len(pieces) && pieces[k].Off < e.End(); k++ {
			if !covered {
				covered = true
				if err := tx.Delete(extentKey(ino, e.Off)); err != nil {
					return err
				}
				ref(e, -1)
				stored -= int64(e.Len)
			}
			if pieces[k].Off > pos {
				if err := keep(e, pos, pieces[k].Off); err != nil {
					return err
				}
			}
			pos = max(pos, pieces[k].End())
		}
		if covered && pos < e.End() {
			if err := keep(e, pos, e.End()); err != nil {
				return err
			}
		}
	}
	for _, p := range pieces {
		if err := tx.putExtent(ino, p); err != nil {
			return err
		}
		ref(p, 1)
		stored += int64(p.Len)
	}
	for id, r := range refs {
		if r.delta != 0 {
			if err := tx.addRef(id, r.blockLen, r.delta); err != nil {
				return err
			}
		}
	}
	return n.addStored(stored)
}

// resolveWrites turns extents written in order into the sorted,
// non-overlapping pieces that remain visible: where two overlap, the
// later one wins. It sweeps the extents' edges keeping the extents open
// at each point in a heap, latest first.
func resolveWrites(exts []wire.Extent) []wire.Extent {
	if len(exts) == 0 {
		return nil
	}
	byOff := make([]int, len(exts))
	edges := make([]uint64, 0, 2*len(exts))
	for i, e := range exts {
		byOff[i] = i
		edges = append(edges, e.Off, e.End())
	}
	slices.SortStableFunc(byOff, func(a, b int) int {
		if exts[a].Off < exts[b].Off {
			return -1
		} else if exts[a].Off > exts[b].Off {
			return 1
		}
		return 0
	})
	slices.Sort(edges)
	edges = slices.Compact(edges)
	var open latestFirst
	var out []wire.Extent
	next := 0
	for k := 0; k+1 < len(edges); k++ {
		lo, hi := edges[k], edges[k+1]
		for next < len(byOff) && exts[byOff[next]].Off == lo {
			heap.Push(&open, byOff[next])
			next++
		}
		for open.Len() > 0 && exts[open[0]].End() <= lo {
			heap.Pop(&open)
		}
		if open.Len() == 0 {
			continue
		}
		w := exts[open[0]]
		if n := len(out); n > 0 && out[n-1].End() == lo && out[n-1].Block == w.Block &&
			uint64(out[n-1].BlockOff)+uint64(out[n-1].Len) == uint64(w.BlockOff)+(lo-w.Off) {
			out[n-1].Len += uint32(hi - lo) // the same block, continued
			continue
		}
		out = append(out, wire.Extent{Off: lo, Len: uint32(hi - lo), Block: w.Block, BlockOff: w.BlockOff + uint32(lo-w.Off), BlockLen: w.BlockLen})
	}
	return out
}

// latestFirst is a heap of indexes into a list of writes, latest on top.
type latestFirst []int

func (h latestFirst) Len() int           { return len(h) }
func (h latestFirst) Less(i, j int) bool { return h[i] > h[j] }
func (h latestFirst) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *latestFirst) Push(x any)        { *h = append(*h, x.(int)) }
func (h *latestFirst) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
