package client

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/cluster"
	"github.com/cairn-fs/cairn/internal/placement"
	"github.com/cairn-fs/cairn/internal/wire"
)

// putBlock stores data on R chunkservers: the first R up nodes in the
// block's ranking, moving on down the ranking past any that fail. It
// returns only when R of them have it on disk.
func (c *Client) putBlock(ctx context.Context, id block.ID, data []byte) error {
	m, r := c.clusterMap()
	ranked := c.suspects.order(placement.Replicas(id, &m))
	need := min(r, len(m.Nodes))
	if need == 0 {
		return wire.Errorf(wire.CodeUnavailable, "no chunkservers in the cluster map")
	}
	if len(ranked) < need {
		return wire.Errorf(wire.CodeUnavailable, "block %s needs %d replicas but only %d chunkservers are up", id.Short(), need, len(ranked))
	}
	req := &wire.PutReq{ID: id, Data: data}
	var (
		mu      sync.Mutex
		stored  int
		errs    []error
		next    = need
		noSpace bool
	)
	var wg sync.WaitGroup
	var try func(n cluster.Node)
	try = func(n cluster.Node) {
		defer wg.Done()
		err := c.rpc.Call(ctx, n.Addr, wire.CPut, req, &wire.Empty{})
		c.suspects.note(n.Addr, err)
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			stored++
			return
		}
		errs = append(errs, fmt.Errorf("chunkserver %s: %w", n.Addr, err))
		noSpace = noSpace || errors.Is(err, wire.ErrNoSpace)
		if next < len(ranked) && ctx.Err() == nil {
			wg.Add(1)
			go try(ranked[next])
			next++
		}
	}
	wg.Add(need)
	for _, n := range ranked[:need] {
		go try(n)
	}
	wg.Wait()
	if stored >= need {
		return nil
	}
	code := wire.CodeIO
	if noSpace {
		code = wire.CodeNoSpace
	}
	return wire.Errorf(code, "block %s stored on %d of %d chunkservers: %v", id.Short(), stored, need, errors.Join(errs...))
}

// getBlock returns a block's content from the cache or from the first
// replica that has a copy that verifies. Concurrent readers of one block
// share one fetch.
func (c *Client) getBlock(ctx context.Context, id block.ID) ([]byte, error) {
	if data, ok := c.cache.get(id); ok {
		return data, nil
	}
	return c.fetches.do(id, func() ([]byte, error) {
		if data, ok := c.cache.get(id); ok {
			return data, nil
		}
		m, _ := c.clusterMap()
		// Up nodes in rank order first, then the down ones as a last resort.
		candidates := c.suspects.order(placement.Replicas(id, &m))
		for _, n := range placement.Rank(id, m.Nodes) {
			if n.State != cluster.Up {
				candidates = append(candidates, n)
			}
		}
		var errs []error
		for _, n := range candidates {
			var resp wire.GetResp
			err := c.rpc.Call(ctx, n.Addr, wire.CGet, &wire.BlockReq{ID: id}, &resp)
			if err == nil && !id.Verify(resp.Data) {
				err = wire.Errorf(wire.CodeCorrupt, "replica fails its hash")
			}
			c.suspects.note(n.Addr, err)
			if err != nil {
				c.reportBad(id, n.Addr, err)
				if !errors.Is(err, wire.ErrNotFound) {
					c.cfg.Log.Warn("bad block replica", "block", id.String(), "chunkserver", n.Addr, "err", err)
				}
				errs = append(errs, fmt.Errorf("%s: %w", n.Addr, err))
				if ctx.Err() != nil {
					break
				}
				continue
			}
			c.cache.add(id, resp.Data)
			return resp.Data, nil
		}
		return nil, wire.Errorf(wire.CodeIO, "block %s: no good replica: %v", id.Short(), errors.Join(errs...))
	})
}
