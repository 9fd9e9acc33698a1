// Package placement decides which chunkservers hold a block. It is a pure
// function of the block ID and the cluster map (weighted rendezvous
// hashing), so every client computes it alone and a membership change
// moves only the blocks whose top-R set changed.
package placement

import (
	"encoding/binary"
	"math"
	"sort"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/cluster"
	"lukechampine.com/blake3"
)

// Rank orders nodes by their weighted rendezvous score for id, best
// first. The first R of the up nodes are the block's replicas; the rest
// are the fallbacks a reader or a writer tries next.
func Rank(id block.ID, nodes []cluster.Node) []cluster.Node {
	type scored struct {
		n     cluster.Node
		score float64
	}
	s := make([]scored, len(nodes))
	for i, n := range nodes {
		s[i] = scored{n, score(id, n)}
	}
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].score != s[j].score {
			return s[i].score > s[j].score
		}
		return s[i].n.ID < s[j].n.ID
	})
	out := make([]cluster.Node, len(s))
	for i := range s {
		out[i] = s[i].n
	}
	return out
}

// Replicas returns the r up nodes that should hold id, best first, and
// after them the remaining up nodes in rank order (where a writer goes
// when one of the first r fails).
func Replicas(id block.ID, m *cluster.Map) []cluster.Node {
	return Rank(id, m.Up())
}

// score is the weighted rendezvous score -w/ln(u), with u in (0,1) drawn
// from a hash of (block, node). Its maximum over nodes picks each node
// with probability proportional to its weight.
func score(id block.ID, n cluster.Node) float64 {
	h := blake3.New(8, nil)
	h.Write(id[:])
	h.Write([]byte(n.ID))
	var sum [8]byte
	h.Sum(sum[:0])
	u := (float64(binary.BigEndian.Uint64(sum[:])>>11) + 0.5) / (1 << 53)
	w := float64(n.Weight)
	if w <= 0 {
		w = 1
	}
	return -w / math.Log(u)
}
