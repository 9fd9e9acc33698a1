package metaserver

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/cluster"
	"github.com/cairn-fs/cairn/internal/placement"
	"github.com/cairn-fs/cairn/internal/wire"
)

// The scheduler runs the background work — repair, rebalance, garbage
// collection and scrub — as tasks, each executed by one chunkserver
// through one RPC. It starts queued tasks on the least-loaded chunkservers
// first, never more than TasksPerNode at once on one server, and retries
// a failed task with backoff before counting it failed. Tasks are not
// persisted: the next reconcile pass (reconcile.go) finds whatever work
// is still needed from the namespace and the chunkservers' listings, so a
// metaserver restart loses nothing but time.

type taskKind int

const (
	kindRepair    taskKind = iota // copy a block that has fewer than R good copies
	kindRebalance                 // copy to a new top-R node, or delete an extra copy
	kindGC                        // delete garbage: unreferenced blocks past the grace period
	kindScrub                     // re-hash a stretch of a chunkserver's blocks
	kindCount
)

var kindNames = [kindCount]string{"repair", "rebalance", "gc", "scrub"}

// maxAttempts is how often a task runs before it counts as failed.
const maxAttempts = 5

// maxQueued bounds the copy and delete tasks waiting, which bounds the
// scheduler's memory and work after a large failure; what does not fit
// is queued by a later pass.
const maxQueued = 20000

type task struct {
	kind   taskKind
	node   cluster.Node // the chunkserver that executes it
	ids    []block.ID   // the blocks it copies or deletes
	from   []string     // copy: where to fetch from, best first
	delete bool         // delete ids (else copy ids[0] onto node)
	minAge time.Duration
	scrub  block.ID // scrub: the cursor to start after

	attempts  int
	notBefore time.Time
}

type nodeBlock struct {
	node string
	id   block.ID
}

type kindStats struct{ queued, running, done, failed uint64 }

type scheduler struct {
	s       *Server
	perNode int
	wake    chan struct{}

	mu struct {
		sync.Mutex
		queue    []*task
		running  map[string]int         // node ID → tasks running on it
		busy     map[nodeBlock]struct{} // block work queued or running, to not queue it twice
		kinds    [kindCount]kindStats
		moved    uint64 // bytes copied between chunkservers
		freed    uint64 // bytes deleted
		corrupt  uint64 // bad copies found by scrub or reported by clients
		copying  int    // copy tasks running now
		copyFrom time.Time
		moveTime time.Duration // total time with at least one copy running
		scrubbed map[string]uint64
		scrubAt  map[string]block.ID // per node: the scrub cursor (zero: start)
		health   health
	}
}

// health is what the last reconcile pass found.
type health struct {
	blocks, under, lost, garbage uint64
	space                        spaceUse
	nodeBlocks                   map[string]uint64
	at                           time.Time
	took                         time.Duration
}

func newScheduler(s *Server) *scheduler {
	sc := &scheduler{s: s, perNode: s.cfg.TasksPerNode, wake: make(chan struct{}, 1)}
	sc.mu.running = make(map[string]int)
	sc.mu.busy = make(map[nodeBlock]struct{})
	sc.mu.scrubbed = make(map[string]uint64)
	sc.mu.scrubAt = make(map[string]block.ID)
	return sc
}

func (sc *scheduler) poke() {
	select {
	case sc.wake <- struct{}{}:
	default:
	}
}

// add queues t unless every block it names is already being worked on
// on that node; it reports whether it queued anything.
func (sc *scheduler) add(t *task) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if len(sc.mu.queue) >= maxQueued && t.kind != kindScrub {
		return false
	}
	ids := t.ids[:0:0]
	for _, id := range t.ids {
		k := nodeBlock{t.node.ID, id}
		if _, ok := sc.mu.busy[k]; ok {
			continue
		}
		sc.mu.busy[k] = struct{}{}
		ids = append(ids, id)
	}
	if len(ids) == 0 && t.kind != kindScrub {
		return false
	}
	t.ids = ids
	sc.mu.queue = append(sc.mu.queue, t)
	sc.mu.kinds[t.kind].queued++
	sc.poke()
	return true
}

// run dispatches tasks until stop is closed.
func (sc *scheduler) run(stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var tasks sync.WaitGroup
	defer tasks.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		case <-sc.wake:
		}
		for _, t := range sc.startable() {
			tasks.Add(1)
			go func() {
				defer tasks.Done()
				res, err := sc.execute(ctx, t)
				sc.finish(t, res, err)
			}()
		}
	}
}

// startable takes the tasks that may start now off the queue, filling
// the least-loaded chunkservers first.
func (sc *scheduler) startable() []*task {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	now := time.Now()
	var start []*task
	for {
		best := -1
		for i, t := range sc.mu.queue {
			if now.Before(t.notBefore) || sc.mu.running[t.node.ID] >= sc.perNode {
				continue
			}
			if best < 0 || sc.mu.running[t.node.ID] < sc.mu.running[sc.mu.queue[best].node.ID] {
				best = i
			}
		}
		if best < 0 {
			return start
		}
		t := sc.mu.queue[best]
		sc.mu.queue = append(sc.mu.queue[:best], sc.mu.queue[best+1:]...)
		sc.mu.running[t.node.ID]++
		k := &sc.mu.kinds[t.kind]
		k.queued--
		k.running++
		if !t.delete && t.kind != kindScrub {
			if sc.mu.copying == 0 {
				sc.mu.copyFrom = now
			}
			sc.mu.copying++
		}
		start = append(start, t)
	}
}

// result is what one task execution produced.
type result struct {
	moved, freed uint64
	bad          []block.ID
	next         block.ID
	scrubDone    bool
	scrubbed     uint64
}

func (sc *scheduler) execute(ctx context.Context, t *task) (res result, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c := sc.s.chunks
	switch {
	case t.kind == kindScrub:
		var resp wire.ScrubResp
		err = c.Call(ctx, t.node.Addr, wire.CScrub, &wire.ScrubReq{After: t.scrub, MaxBytes: sc.s.cfg.ScrubBytes}, &resp)
		res.bad, res.next, res.scrubDone, res.scrubbed = resp.Bad, resp.Next, resp.Done, resp.Bytes
	case t.delete:
		var resp wire.DeleteResp
		err = c.Call(ctx, t.node.Addr, wire.CDelete, &wire.DeleteReq{IDs: t.ids, MinAge: int64(t.minAge)}, &resp)
		res.freed = resp.Freed
	default:
		var resp wire.FetchResp
		err = c.Call(ctx, t.node.Addr, wire.CFetch, &wire.FetchReq{ID: t.ids[0], From: t.from}, &resp)
		res.moved = resp.Moved
	}
	return res, err
}

func (sc *scheduler) finish(t *task, res result, err error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	defer sc.poke()
	now := time.Now()
	sc.mu.running[t.node.ID]--
	k := &sc.mu.kinds[t.kind]
	k.running--
	if !t.delete && t.kind != kindScrub {
		sc.mu.copying--
		if sc.mu.copying == 0 {
			sc.mu.moveTime += now.Sub(sc.mu.copyFrom)
		}
	}
	sc.mu.moved += res.moved
	sc.mu.freed += res.freed
	if err != nil {
		t.attempts++
		if t.attempts < maxAttempts && sc.s.members.isLive(t.node.ID) {
			t.notBefore = now.Add(time.Duration(t.attempts*t.attempts) * 200 * time.Millisecond)
			sc.mu.queue = append(sc.mu.queue, t)
			k.queued++
			return
		}
		k.failed++
		sc.s.cfg.Log.Warn("background task failed", "kind", kindNames[t.kind], "chunkserver", t.node.Addr, "blocks", len(t.ids), "attempts", t.attempts, "err", err)
	} else {
		k.done++
	}
	for _, id := range t.ids {
		delete(sc.mu.busy, nodeBlock{t.node.ID, id})
	}
	if t.kind == kindScrub && err == nil {
		sc.mu.scrubbed[t.node.ID] += res.scrubbed
		sc.mu.corrupt += uint64(len(res.bad))
		if res.scrubDone {
			delete(sc.mu.scrubAt, t.node.ID) // next round starts over, on schedule
		} else {
			sc.mu.scrubAt[t.node.ID] = res.next
			next := *t
			next.scrub, next.attempts = res.next, 0
			sc.mu.queue = append(sc.mu.queue, &next)
			k.queued++
		}
		if len(res.bad) > 0 {
			sc.s.kickReconcile() // the bad copies are gone from its listing: re-replicate
		}
	}
}

// queueScrubs starts a scrub round on every live chunkserver that is not
// already scrubbing.
func (sc *scheduler) queueScrubs(m cluster.Map) {
	sc.mu.Lock()
	scrubbing := map[string]bool{}
	for _, t := range sc.mu.queue {
		if t.kind == kindScrub {
			scrubbing[t.node.ID] = true
		}
	}
	running := sc.mu.kinds[kindScrub].running
	sc.mu.Unlock()
	if running > 0 {
		return // a round is still going
	}
	for _, n := range m.Nodes {
		if n.State != cluster.Down && !scrubbing[n.ID] {
			sc.mu.Lock()
			sc.mu.scrubbed[n.ID] = 0
			sc.mu.Unlock()
			sc.add(&task{kind: kindScrub, node: n})
		}
	}
}

// reportBad queues the replacement of a bad copy that a client found.
func (sc *scheduler) reportBad(id block.ID, addr string) error {
	m := sc.s.members.snapshot()
	var bad *cluster.Node
	var from []string
	for _, n := range rankAll(id, m) {
		if n.Addr == addr {
			bad = &n
		} else if n.State != cluster.Down {
			from = append(from, n.Addr)
		}
	}
	if bad == nil {
		return wire.Errorf(wire.CodeNotFound, "no chunkserver at %s", addr)
	}
	sc.s.cfg.Log.Warn("bad block replica reported", "block", id.String(), "chunkserver", addr)
	sc.mu.Lock()
	sc.mu.corrupt++
	sc.mu.Unlock()
	sc.add(&task{kind: kindRepair, node: *bad, ids: []block.ID{id}, from: from})
	return nil
}

// stats returns the scheduler's state for `cairn status`.
func (sc *scheduler) stats() *wire.TasksResp {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	h := sc.mu.health
	r := &wire.TasksResp{
		Blocks: h.blocks, UnderReplicated: h.under, Lost: h.lost, Garbage: h.garbage,
		BytesMoved: sc.mu.moved, BytesReclaimed: sc.mu.freed, CorruptFound: sc.mu.corrupt,
		MoveNanos: int64(sc.mu.moveTime), PassNanos: int64(h.took),
		FileBytes: h.space.files, BlockBytes: h.space.blocks, StoredBytes: h.space.stored, DiskBytes: h.space.disk,
	}
	if sc.mu.copying > 0 {
		r.MoveNanos += int64(time.Since(sc.mu.copyFrom))
	}
	if !h.at.IsZero() {
		r.LastPass = h.at.UnixNano()
	}
	for k, st := range sc.mu.kinds {
		r.Kinds = append(r.Kinds, wire.TaskCount{Kind: kindNames[k], Queued: st.queued, Running: st.running, Done: st.done, Failed: st.failed})
	}
	for _, n := range sc.s.members.snapshot().Nodes {
		r.Nodes = append(r.Nodes, wire.NodeTasks{ID: n.ID, Blocks: h.nodeBlocks[n.ID], Running: uint32(sc.mu.running[n.ID]), Scrubbed: sc.mu.scrubbed[n.ID]})
	}
	sort.Slice(r.Nodes, func(i, j int) bool { return r.Nodes[i].ID < r.Nodes[j].ID })
	return r
}

// loads returns the number of tasks running per node ID.
func (sc *scheduler) loads() map[string]int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	l := make(map[string]int, len(sc.mu.running))
	for k, v := range sc.mu.running {
		l[k] = v
	}
	return l
}

// rankAll ranks every node of m for id, up or not.
func rankAll(id block.ID, m cluster.Map) []cluster.Node {
	return placement.Rank(id, m.Nodes)
}
