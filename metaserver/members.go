package metaserver

import (
	"sort"
	"sync"
	"time"

	"github.com/cairn-fs/cairn/internal/cluster"
	"github.com/cairn-fs/cairn/internal/wire"
	badger "github.com/dgraph-io/badger/v4"
)

// members keeps the cluster map. Chunkservers join by heartbeating; one
// that stays silent for downAfter is marked down. The epoch is persisted
// and bumped on every change a client's placement depends on.
type members struct {
	store     *store
	downAfter time.Duration

	mu struct {
		sync.Mutex
		m        cluster.Map
		lastSeen map[string]time.Time
	}
}

func newMembers(s *store, downAfter time.Duration) (*members, error) {
	ms := &members{store: s, downAfter: downAfter}
	ms.mu.lastSeen = make(map[string]time.Time)
	err := s.view(func(tx *txn) error {
		epoch, err := tx.getU64(keyEpoch)
		if err != nil {
			return err
		}
		ms.mu.m.Epoch = epoch
		it := tx.NewIterator(badger.IteratorOptions{Prefix: []byte{tNode}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var hb wire.HeartbeatReq
			if err := it.Item().Value(func(b []byte) error { return wire.Unmarshal(b, &hb) }); err != nil {
				return err
			}
			// Give every known node a full timeout to heartbeat again
			// before it counts as down.
			ms.mu.m.Nodes = append(ms.mu.m.Nodes, hb.Node)
			ms.mu.lastSeen[hb.Node.ID] = time.Now()
		}
		return nil
	})
	return ms, err
}

// snapshot returns a copy of the current map.
func (ms *members) snapshot() cluster.Map {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	m := ms.mu.m
	m.Nodes = append([]cluster.Node(nil), m.Nodes...)
	return m
}

// heartbeat records that node is alive with the given address and usage.
func (ms *members) heartbeat(node cluster.Node) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.mu.lastSeen[node.ID] = time.Now()
	node.State = cluster.Up
	for i, old := range ms.mu.m.Nodes {
		if old.ID != node.ID {
			continue
		}
		if old.State == cluster.Draining {
			node.State = cluster.Draining // until it leaves
		}
		changed := old.Addr != node.Addr || old.Weight != node.Weight || old.State != node.State
		ms.mu.m.Nodes[i] = node
		if changed {
			return ms.persistLocked(node)
		}
		return nil
	}
	ms.mu.m.Nodes = append(ms.mu.m.Nodes, node)
	sort.Slice(ms.mu.m.Nodes, func(i, j int) bool { return ms.mu.m.Nodes[i].ID < ms.mu.m.Nodes[j].ID })
	return ms.persistLocked(node)
}

// persistLocked bumps the epoch and stores node's entry.
func (ms *members) persistLocked(node cluster.Node) error {
	ms.mu.m.Epoch++
	return ms.store.update(func(tx *txn) error {
		if err := tx.putU64(keyEpoch, ms.mu.m.Epoch); err != nil {
			return err
		}
		return tx.put(nodeKey(node.ID), &wire.HeartbeatReq{Node: node})
	})
}

// markDown marks nodes that missed heartbeats for downAfter as down.
func (ms *members) markDown(now time.Time) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for i, n := range ms.mu.m.Nodes {
		// A draining node that went silent (stopped once drained) is down too.
		if n.State != cluster.Down && now.Sub(ms.mu.lastSeen[n.ID]) > ms.downAfter {
			ms.mu.m.Nodes[i].State = cluster.Down
			ms.store.log.Warn("chunkserver down", "id", n.ID, "addr", n.Addr, "silent", now.Sub(ms.mu.lastSeen[n.ID]).Round(time.Second))
			if err := ms.persistLocked(ms.mu.m.Nodes[i]); err != nil {
				ms.store.log.Error("persist cluster map", "err", err)
			}
		}
	}
}

// drain marks the node with this ID or address as draining: it takes no
// new blocks, and the scheduler moves its blocks to the others.
func (ms *members) drain(idOrAddr string) (cluster.Node, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for i, n := range ms.mu.m.Nodes {
		if n.ID != idOrAddr && n.Addr != idOrAddr {
			continue
		}
		if n.State == cluster.Draining {
			return n, nil
		}
		ms.mu.m.Nodes[i].State = cluster.Draining
		ms.store.log.Info("chunkserver draining", "id", n.ID, "addr", n.Addr)
		return ms.mu.m.Nodes[i], ms.persistLocked(ms.mu.m.Nodes[i])
	}
	return cluster.Node{}, wire.Errorf(wire.CodeNotFound, "no chunkserver %q in the cluster map", idOrAddr)
}

// isLive reports whether the node with this ID is in the map and not down.
func (ms *members) isLive(id string) bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for _, n := range ms.mu.m.Nodes {
		if n.ID == id {
			return n.State != cluster.Down
		}
	}
	return false
}
