package client

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/cluster"
	"github.com/cairn-fs/cairn/internal/rpc"
	"github.com/cairn-fs/cairn/internal/wire"
)

// suspectFor is how long a chunkserver that could not be reached is tried
// only after the others. The metaserver marks a dead one down only after
// its down-after timeout (15s by default); until then every block placed
// on it would wait out a connection timeout first.
const suspectFor = 10 * time.Second

// suspects remembers chunkservers that recently failed to connect.
type suspects struct {
	mu    sync.Mutex
	until map[string]time.Time // by address
}

// note records the outcome of a call to addr.
func (s *suspects) note(addr string, err error) {
	if err != nil && !rpc.IsConnError(err) {
		return // it answered
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		delete(s.until, addr)
		return
	}
	if s.until == nil {
		s.until = make(map[string]time.Time)
	}
	s.until[addr] = time.Now().Add(suspectFor)
}

// order moves suspected nodes to the end, keeping the rank order otherwise.
func (s *suspects) order(nodes []cluster.Node) []cluster.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.until) == 0 {
		return nodes
	}
	now := time.Now()
	good := make([]cluster.Node, 0, len(nodes))
	var bad []cluster.Node
	for _, n := range nodes {
		if now.Before(s.until[n.Addr]) {
			bad = append(bad, n)
		} else {
			good = append(good, n)
		}
	}
	return append(good, bad...)
}

// reportBad tells the metaserver that the copy of id at addr failed
// verification, so that it is replaced. It does not wait.
func (c *Client) reportBad(id block.ID, addr string, err error) {
	if err != nil && !errorsIsCorrupt(err) {
		return // unreachable or missing: the repair scan finds those
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.rpc.Call(ctx, c.cfg.Meta, wire.MReportBad, &wire.BadReplicaReq{ID: id, Addr: addr}, &wire.Empty{}); err != nil {
			c.cfg.Log.Warn("report bad replica", "block", id.String(), "chunkserver", addr, "err", err)
		}
	}()
}

func errorsIsCorrupt(err error) bool { return errors.Is(err, wire.ErrCorrupt) }
