package metaserver

import (
	"context"
	"sort"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/cluster"
	"github.com/cairn-fs/cairn/internal/placement"
	"github.com/cairn-fs/cairn/internal/wire"
	badger "github.com/dgraph-io/badger/v4"
)

// A reconcile pass compares what the namespace references (the R table)
// with what the chunkservers hold (their listings) and with where
// placement says each block belongs (the top R up nodes of its ranking):
//
//   - a target that lacks a referenced block gets a copy from a node that
//     has one (repair if the block has fewer than R copies, else
//     rebalance: a node joined or left);
//   - once every target holds it, copies on other nodes (a node that came
//     back, a draining node) are deleted;
//   - a block nothing references, older than the grace period and not
//     waiting out its grace in the G table, is deleted (an upload whose
//     commit never came, or a copy a down node kept while it was
//     collected).
//
// The metaserver stores no block locations: the listings are the truth,
// taken fresh every pass. Memory is proportional to the blocks stored.

// copyAt is one stored copy seen in a listing.
type copyAt struct {
	node int           // index into the pass's map
	age  time.Duration // as of the pass's snapshot of the references
	size uint32        // bytes on the chunkserver's disk (compressed or not)
}

func (s *Server) reconcileLoop() {
	defer s.wg.Done()
	t := time.NewTicker(min(s.cfg.ReconcileEvery, time.Second))
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-s.stop; cancel() }()
	var lastPass time.Time
	lastScrub := time.Now()
	var epoch uint64
	for {
		kicked := false
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.kick:
			kicked = true
		}
		m := s.members.snapshot()
		// Blocks past their grace period go every tick, not every pass.
		if err := s.collectGarbage(m); err != nil {
			s.cfg.Log.Warn("garbage collection", "err", err)
		}
		// A membership change (a node down, back, joining or draining)
		// calls for a pass at once.
		if !kicked && m.Epoch == epoch && time.Since(lastPass) < s.cfg.ReconcileEvery {
			continue
		}
		epoch, lastPass = m.Epoch, time.Now()
		if err := s.reconcile(ctx, m); err != nil && ctx.Err() == nil {
			s.cfg.Log.Warn("reconcile pass", "err", err)
		}
		if time.Since(lastScrub) >= s.cfg.ScrubEvery {
			lastScrub = time.Now()
			s.sched.queueScrubs(m)
		}
	}
}

// kickReconcile asks for a pass soon (a node changed state, a bad copy
// was found).
func (s *Server) kickReconcile() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Server) reconcile(ctx context.Context, m cluster.Map) error {
	start := time.Now()
	if err := s.collectGarbage(m); err != nil {
		return err
	}
	waiting := make(map[block.ID]bool)
	want := min(s.cfg.Replicas, len(m.Nodes))
	load := s.sched.loads()
	var blocks, under, lost uint64
	var space spaceUse
	inv := make(map[block.ID][]copyAt)
	listed := make(map[string]bool, len(m.Nodes))
	nodeBlocks := make(map[string]uint64)
	// A copy's age counts as of the snapshot, not of its listing, which
	// may come much later (a dead node not yet marked down holds up the
	// listings after its own): a block uploaded and committed since the
	// snapshot is unreferenced in it, and only its age at the snapshot
	// shows that its writer may still have been within the grace period.
	snapshot := time.Now() // no later than the view's read timestamp
	err := s.store.view(func(tx *txn) error {
		// Blocks waiting out their grace period in this snapshot are not
		// orphans, however old their files.
		git := tx.NewIterator(badger.IteratorOptions{Prefix: []byte{tGarbage}})
		for git.Rewind(); git.Valid(); git.Next() {
			if key := git.Item().Key(); len(key) == 1+8+len(block.ID{}) {
				waiting[block.ID(key[9:])] = true
			}
		}
		git.Close()
		// The listings are taken after this snapshot of the R table: a
		// block it references was committed, so uploaded, before them,
		// and a listing that lacks it really lacks it.
		for i, n := range m.Nodes {
			if n.State == cluster.Down {
				continue
			}
			count, err := s.list(ctx, n, func(b wire.StoredBlock) {
				age := time.Duration(b.Age) - time.Since(snapshot)
				inv[b.ID] = append(inv[b.ID], copyAt{node: i, age: age, size: b.Size})
			})
			if err != nil {
				s.cfg.Log.Debug("list chunkserver", "chunkserver", n.Addr, "err", err)
				continue
			}
			listed[n.ID] = true
			nodeBlocks[n.ID] = count
		}
		allListed := true
		for _, n := range m.Nodes {
			allListed = allListed && (n.State == cluster.Down || listed[n.ID])
		}
		if err := space.addFiles(ctx, tx); err != nil {
			return err
		}
		it := tx.NewIterator(badger.IteratorOptions{Prefix: []byte{tRef}})
		defer it.Close()
		for it.Rewind(); it.Valid() && ctx.Err() == nil; it.Next() {
			key := it.Item().Key()
			var id block.ID
			if len(key) != 1+len(id) {
				continue
			}
			copy(id[:], key[1:])
			copies := inv[id]
			delete(inv, id)
			blocks++
			if err := space.addBlock(it.Item(), copies); err != nil {
				return err
			}
			if len(copies) < want {
				under++
			}
			if len(copies) == 0 {
				if allListed {
					lost++ // (a node that did not answer may still have it)
				}
				continue // nothing to copy from
			}
			s.place(m, id, copies, listed, len(copies) < want, load)
		}
		return ctx.Err()
	})
	if err != nil {
		return err
	}
	// What is left is referenced by nothing.
	orphans := make(map[int][]block.ID)
	for id, copies := range inv {
		if waiting[id] {
			continue
		}
		for _, c := range copies {
			if c.age > s.cfg.GCGrace {
				orphans[c.node] = append(orphans[c.node], id)
			}
		}
	}
	for i, ids := range orphans {
		for len(ids) > 0 {
			n := min(len(ids), gcBatch)
			s.sched.add(&task{kind: kindGC, node: m.Nodes[i], ids: ids[:n], delete: true, minAge: s.cfg.GCGrace})
			ids = ids[n:]
		}
	}
	if lost > 0 {
		s.cfg.Log.Error("referenced blocks with no copy on any live chunkserver: lost", "blocks", lost)
	}
	s.sched.mu.Lock()
	s.sched.mu.health = health{blocks: blocks, under: under, lost: lost, garbage: uint64(len(waiting)),
		space: space, nodeBlocks: nodeBlocks, at: time.Now(), took: time.Since(start)}
	s.sched.mu.Unlock()
	return nil
}

// place queues the copies and deletions that bring block id from where
// its copies are to its top-R nodes.
func (s *Server) place(m cluster.Map, id block.ID, copies []copyAt, listed map[string]bool, short bool, load map[string]int) {
	holds := make(map[string]bool, len(copies))
	from := make([]string, 0, len(copies))
	for _, c := range copies {
		holds[m.Nodes[c.node].ID] = true
		from = append(from, m.Nodes[c.node].Addr)
	}
	// The targets are the top R of the ranking, except that a full node
	// that lacks the block is passed over for the next one, as a writer
	// does. A full node keeps the copies it has, so nothing oscillates.
	var targets []cluster.Node
	for _, n := range placement.Replicas(id, &m) {
		if len(targets) == s.cfg.Replicas {
			break
		}
		if holds[n.ID] || !full(n) {
			targets = append(targets, n)
		}
	}
	// Fetch from the least busy holder first.
	addrLoad := make(map[string]int)
	for _, n := range m.Nodes {
		addrLoad[n.Addr] = load[n.ID]
	}
	sort.SliceStable(from, func(i, j int) bool { return addrLoad[from[i]] < addrLoad[from[j]] })
	kind := kindRebalance
	if short {
		kind = kindRepair
	}
	allHeld := true
	isTarget := make(map[string]bool, len(targets))
	for _, t := range targets {
		isTarget[t.ID] = true
		if holds[t.ID] {
			continue
		}
		allHeld = false
		if !listed[t.ID] {
			continue // not answering: it is likely dying; wait for it to be marked down
		}
		s.sched.add(&task{kind: kind, node: t, ids: []block.ID{id}, from: from})
	}
	if !allHeld || len(targets) < min(s.cfg.Replicas, len(m.Nodes)) {
		return // keep every copy until the targets hold it
	}
	for _, c := range copies {
		n := m.Nodes[c.node]
		if !isTarget[n.ID] {
			s.sched.add(&task{kind: kindRebalance, node: n, ids: []block.ID{id}, delete: true})
		}
	}
}

// full reports whether a node's disk, as of its last heartbeat, has no
// room for another couple of blocks.
func full(n cluster.Node) bool {
	return n.Total > 0 && n.Total-min(n.Used, n.Total) < 2*block.MaxSize
}

// list calls fn for every block chunkserver n stores.
func (s *Server) list(ctx context.Context, n cluster.Node, fn func(wire.StoredBlock)) (uint64, error) {
	var after block.ID
	var count uint64
	for {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		var resp wire.ListResp
		err := s.chunks.Call(cctx, n.Addr, wire.CList, &wire.ListReq{After: after, Limit: 1 << 14}, &resp)
		cancel()
		if err != nil {
			return count, err
		}
		for _, b := range resp.Blocks {
			fn(b)
			after = b.ID
			count++
		}
		if !resp.More || len(resp.Blocks) == 0 {
			return count, nil
		}
	}
}
