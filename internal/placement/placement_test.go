package placement

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/cluster"
)

// randomIDs returns n block IDs from a fixed seed, so that the
// statistical tests below are deterministic and cannot flake.
func randomIDs(n int, seed uint64) []block.ID {
	rng := rand.New(rand.NewPCG(seed, 0xca1e))
	ids := make([]block.ID, n)
	for i := range ids {
		for j := 0; j < len(ids[i]); j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8; k++ {
				ids[i][j+k] = byte(v >> (8 * k))
			}
		}
	}
	return ids
}

func mkNodes(weights ...uint64) []cluster.Node {
	ns := make([]cluster.Node, len(weights))
	for i, w := range weights {
		ns[i] = cluster.Node{ID: fmt.Sprintf("node-%02d", i), Addr: fmt.Sprintf("127.0.0.1:%d", 9000+i), Weight: w}
	}
	return ns
}

func ids(ns []cluster.Node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.ID
	}
	return out
}

func topSet(ns []cluster.Node, r int) map[string]bool {
	s := map[string]bool{}
	for _, n := range ns[:min(r, len(ns))] {
		s[n.ID] = true
	}
	return s
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func TestRankDeterministicAndOrderIndependent(t *testing.T) {
	nodes := mkNodes(1, 2, 3, 4, 5, 6, 7)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, id := range randomIDs(500, 1) {
		first := ids(Rank(id, nodes))
		if again := ids(Rank(id, nodes)); !slices.Equal(first, again) {
			t.Fatalf("Rank not deterministic: %v then %v", first, again)
		}
		shuffled := slices.Clone(nodes)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := ids(Rank(id, shuffled)); !slices.Equal(first, got) {
			t.Fatalf("Rank depends on input order: %v vs %v", first, got)
		}
	}
	// The input is not modified.
	if !slices.Equal(ids(nodes), ids(mkNodes(1, 2, 3, 4, 5, 6, 7))) {
		t.Fatal("Rank reordered its input")
	}
}

func TestRankReturnsEveryNodeOnce(t *testing.T) {
	for _, n := range []int{0, 1, 2, 5, 17} {
		w := make([]uint64, n)
		for i := range w {
			w[i] = uint64(i + 1)
		}
		nodes := mkNodes(w...)
		for _, id := range randomIDs(200, uint64(n)) {
			got := Rank(id, nodes)
			if len(got) != n {
				t.Fatalf("%d nodes: Rank returned %d", n, len(got))
			}
			seen := map[string]bool{}
			for _, g := range got {
				if seen[g.ID] {
					t.Fatalf("node %s returned twice", g.ID)
				}
				seen[g.ID] = true
			}
			for _, nd := range nodes {
				if !seen[nd.ID] {
					t.Fatalf("node %s missing", nd.ID)
				}
			}
			// Whole node values come back, not just IDs.
			for _, g := range got {
				i := slices.IndexFunc(nodes, func(x cluster.Node) bool { return x.ID == g.ID })
				if nodes[i] != g {
					t.Fatalf("node %s came back as %+v, want %+v", g.ID, g, nodes[i])
				}
			}
		}
	}
}

// within checks an observed count against its binomial expectation with
// a tolerance of 6 standard deviations plus 1% (the IDs are fixed, so
// this is deterministic; the slack only guards against a change of hash).
func within(t *testing.T, what string, got, trials int, p float64) {
	t.Helper()
	mean := float64(trials) * p
	sd := math.Sqrt(float64(trials) * p * (1 - p))
	if math.Abs(float64(got)-mean) > 6*sd+0.01*float64(trials) {
		t.Errorf("%s: %d of %d, expected about %.0f (p=%.3f, sd %.1f)", what, got, trials, mean, p, sd)
	}
}

func TestDistributionProportionalToWeight(t *testing.T) {
	weights := []uint64{1, 2, 3, 4, 10}
	nodes := mkNodes(weights...)
	var total uint64
	for _, w := range weights {
		total += w
	}
	const N = 20000
	first := map[string]int{}
	for _, id := range randomIDs(N, 7) {
		first[Rank(id, nodes)[0].ID]++
	}
	for i, n := range nodes {
		within(t, "primary on "+n.ID, first[n.ID], N, float64(weights[i])/float64(total))
	}
}

func TestDistributionEqualWeightsAllPositions(t *testing.T) {
	nodes := mkNodes(5, 5, 5, 5, 5, 5, 5, 5)
	const N = 20000
	pos := make([]map[string]int, 3)
	for i := range pos {
		pos[i] = map[string]int{}
	}
	for _, id := range randomIDs(N, 8) {
		r := Rank(id, nodes)
		for i := range pos {
			pos[i][r[i].ID]++
		}
	}
	for i := range pos {
		for _, n := range nodes {
			within(t, fmt.Sprintf("position %d on %s", i, n.ID), pos[i][n.ID], N, 1.0/float64(len(nodes)))
		}
	}
}

func TestZeroWeightCountsAsOne(t *testing.T) {
	a := mkNodes(0, 1, 1)
	b := mkNodes(1, 1, 1)
	for _, id := range randomIDs(300, 9) {
		if !slices.Equal(ids(Rank(id, a)), ids(Rank(id, b))) {
			t.Fatal("weight 0 ranks differently from weight 1")
		}
	}
}

// TestAddNodeMovesLittle adds a node to a cluster of n equal ones: the
// old nodes keep their relative order for every block, only blocks whose
// top-R set now includes the new node change, and about R/(n+1) do.
func TestAddNodeMovesLittle(t *testing.T) {
	const n, N = 9, 20000
	w := slices.Repeat([]uint64{100}, n+1)
	all := mkNodes(w...)
	old, added := all[:n], all[n]
	type pair struct{ before, after []cluster.Node }
	ranks := make([]pair, 0, N)
	for _, id := range randomIDs(N, 11) {
		before := Rank(id, old)
		after := Rank(id, all)
		withoutNew := slices.DeleteFunc(slices.Clone(after), func(x cluster.Node) bool { return x.ID == added.ID })
		if !slices.Equal(ids(before), ids(withoutNew)) {
			t.Fatalf("adding a node reordered the old ones: %v → %v", ids(before), ids(withoutNew))
		}
		ranks = append(ranks, pair{before, after})
	}
	for _, r := range []int{1, 3} {
		moved := 0
		for _, p := range ranks {
			before, after := p.before, p.after
			bs, as := topSet(before, r), topSet(after, r)
			if sameSet(bs, as) {
				if as[added.ID] {
					t.Fatal("new node in an unchanged set")
				}
				continue
			}
			moved++
			if !as[added.ID] {
				t.Fatalf("R=%d: top set changed from %v to %v without gaining the new node", r, bs, as)
			}
			// Exactly one old node made room: the old R-th.
			for k := range as {
				if k != added.ID && !bs[k] {
					t.Fatalf("R=%d: %s joined the top set although only %s was added", r, k, added.ID)
				}
			}
			if as[before[r-1].ID] {
				t.Fatalf("R=%d: the node that made room is not the old last replica", r)
			}
		}
		within(t, fmt.Sprintf("R=%d sets changed by adding a node", r), moved, N, float64(r)/float64(n+1))
	}
}

// TestRemoveNodeMovesOnlyItsBlocks removes a node: only blocks that had
// it in their top-R set change, and they replace it with their old
// (R+1)-th node.
func TestRemoveNodeMovesOnlyItsBlocks(t *testing.T) {
	all := mkNodes(100, 200, 100, 300, 100, 100, 150, 100)
	gone := all[3]
	rest := slices.DeleteFunc(slices.Clone(all), func(x cluster.Node) bool { return x.ID == gone.ID })
	const N = 20000
	type pair struct{ before, after []cluster.Node }
	ranks := make([]pair, 0, N)
	for _, id := range randomIDs(N, 12) {
		ranks = append(ranks, pair{Rank(id, all), Rank(id, rest)})
	}
	for _, r := range []int{1, 3} {
		moved, had := 0, 0
		for _, p := range ranks {
			before, after := p.before, p.after
			bs, as := topSet(before, r), topSet(after, r)
			if bs[gone.ID] {
				had++
			}
			if sameSet(bs, as) {
				if bs[gone.ID] {
					t.Fatal("set kept the removed node")
				}
				continue
			}
			moved++
			if !bs[gone.ID] {
				t.Fatalf("R=%d: set %v → %v changed though it did not hold the removed node", r, bs, as)
			}
			want := topSet(before, r+1)
			delete(want, gone.ID)
			if !sameSet(as, want) {
				t.Fatalf("R=%d: after removal got %v, want the old top-%d minus the removed node %v", r, as, r+1, want)
			}
		}
		if moved != had {
			t.Fatalf("R=%d: %d sets changed, %d had the removed node", r, moved, had)
		}
		// Node 3 has weight 300 of 1150: P(primary) = 300/1150.
		if r == 1 {
			within(t, "blocks on the removed node", had, N, 300.0/1150)
		}
	}
}

func TestReplicasSkipsDownNodes(t *testing.T) {
	nodes := mkNodes(1, 1, 1, 1, 1)
	nodes[1].State = cluster.Down
	nodes[4].State = cluster.Down
	m := &cluster.Map{Epoch: 3, Nodes: nodes}
	up := m.Up()
	for _, id := range randomIDs(300, 13) {
		got := Replicas(id, m)
		if len(got) != 3 {
			t.Fatalf("Replicas returned %d nodes, want the 3 up ones", len(got))
		}
		for _, n := range got {
			if n.State != cluster.Up {
				t.Fatalf("Replicas returned down node %s", n.ID)
			}
		}
		if !slices.Equal(ids(got), ids(Rank(id, up))) {
			t.Fatal("Replicas differs from Rank over the up nodes")
		}
		// Bringing a node down does not reorder the others.
		full := ids(Rank(id, nodes))
		full = slices.DeleteFunc(full, func(s string) bool { return s == nodes[1].ID || s == nodes[4].ID })
		if !slices.Equal(full, ids(got)) {
			t.Fatal("down nodes changed the order of the up ones")
		}
	}
	if got := Replicas(block.ID{}, &cluster.Map{}); len(got) != 0 {
		t.Fatalf("empty map: %v", got)
	}
}
