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

// getBlock returns a block's content from the memory cache, the disk
// cache, or the first replica that has a copy that verifies (which the
// disk cache then keeps). Concurrent readers of one block share one fetch.
func (c *Client) getBlock(ctx context.Context, id block.ID) ([]byte, error) {
	if data, ok := c.cache.get(id); ok {
		return data, nil
	}
	return c.fetches.do(id, func() ([]byte, error) {
		if data, ok := c.cache.get(id); ok {
			return data, nil
		}
		if data, ok := c.disk.get(id); ok {
			c.cache.add(id, data)
			return data, nil
		}
		var outboard []byte
		data, err := c.fromReplicas(ctx, id, func(addr string) ([]byte, error) {
			var resp wire.GetResp
			err := c.rpc.Call(ctx, addr, wire.CGet, &wire.BlockReq{ID: id}, &resp)
			if err == nil {
				var ok bool
				if outboard, ok = c.verifyFetched(id, resp.Data); !ok {
					err = wire.Errorf(wire.CodeCorrupt, "replica fails its hash")
				}
			}
			return resp.Data, err
		})
		if err == nil {
			c.cache.add(id, data)
			c.disk.put(id, data, outboard)
		}
		return data, err
	})
}

// verifyFetched checks a block fetched whole against its ID. When the
// disk cache will keep it, it computes the block's Bao outboard, which
// the cache's entry holds, in the same pass over the bytes.
func (c *Client) verifyFetched(id block.ID, data []byte) (outboard []byte, ok bool) {
	if !c.disk.wants(len(data)) {
		return nil, id.Verify(data)
	}
	return block.Outboard(id, data)
}

// groupFetch names one slice fetch, so that concurrent readers of the
// same groups share it.
type groupFetch struct {
	id     block.ID
	lo, hi int32 // groups [lo, hi]
}

// getRange returns bytes [off, off+n) of block id, which is blockLen
// bytes long, without fetching the whole block: the groups that cover the
// range come from the cache or from one verified slice, and are cached.
func (c *Client) getRange(ctx context.Context, id block.ID, blockLen, off, n uint64) ([]byte, error) {
	if data, ok := c.cache.get(id); ok {
		return data[off : off+n], nil
	}
	out := make([]byte, n)
	first, last := int32(off/block.SliceGroup), int32((off+n-1)/block.SliceGroup)
	for g := first; g <= last; {
		data, ok := c.cache.getKey(cacheKey{id, g})
		if !ok {
			// Fetch from this missing group to the last missing one at once.
			hi := last
			for hi > g {
				if _, ok := c.cache.getKey(cacheKey{id, hi}); !ok {
					break
				}
				hi--
			}
			groups, err := c.fetchGroups(ctx, id, blockLen, g, hi)
			if err != nil {
				return nil, err
			}
			overlay(out, off, groups, uint64(g)*block.SliceGroup)
			g = hi + 1
			continue
		}
		overlay(out, off, data, uint64(g)*block.SliceGroup)
		g++
	}
	return out, nil
}

// fetchGroups fetches groups [lo, hi] of block id as a verified slice,
// from the disk cache or a replica, and caches each group in memory.
func (c *Client) fetchGroups(ctx context.Context, id block.ID, blockLen uint64, lo, hi int32) ([]byte, error) {
	return c.fetches.do(groupFetch{id, lo, hi}, func() ([]byte, error) {
		off := uint64(lo) * block.SliceGroup
		n := min(uint64(hi+1)*block.SliceGroup, blockLen) - off
		data, ok := c.disk.getGroups(id, blockLen, off, n)
		if ok {
			c.cacheGroups(id, lo, hi, data)
			return data, nil
		}
		data, err := c.fromReplicas(ctx, id, func(addr string) ([]byte, error) {
			var resp wire.GetResp
			err := c.rpc.Call(ctx, addr, wire.CGetRange, &wire.GetRangeReq{ID: id, Off: uint32(off), Len: uint32(n)}, &resp)
			if err != nil {
				return nil, err
			}
			groups, ok := id.VerifySlice(resp.Data, off, n)
			if !ok || uint64(len(groups)) != n {
				return nil, wire.Errorf(wire.CodeCorrupt, "slice [%d, %d) fails its hash", off, off+n)
			}
			return groups, nil
		})
		if err != nil {
			return nil, err
		}
		c.cacheGroups(id, lo, hi, data)
		return data, nil
	})
}

// cacheGroups adds data, groups [lo, hi] of block id, to the memory cache.
func (c *Client) cacheGroups(id block.ID, lo, hi int32, data []byte) {
	n := uint64(len(data))
	for g := lo; g <= hi; g++ {
		start := uint64(g-lo) * block.SliceGroup
		c.cache.addKey(cacheKey{id, g}, data[start:min(start+block.SliceGroup, n):min(start+block.SliceGroup, n)])
	}
}

// fromReplicas calls get on the replicas of block id, in rank order (the
// down ones last), until one answers with bytes that verified.
func (c *Client) fromReplicas(ctx context.Context, id block.ID, get func(addr string) ([]byte, error)) ([]byte, error) {
	m, _ := c.clusterMap()
	// Up nodes in rank order (recently unreachable ones last), then the
	// down ones as a last resort.
	candidates := c.suspects.order(placement.Replicas(id, &m))
	for _, n := range placement.Rank(id, m.Nodes) {
		if n.State != cluster.Up {
			candidates = append(candidates, n)
		}
	}
	var errs []error
	for _, n := range candidates {
		data, err := get(n.Addr)
		c.suspects.note(n.Addr, err)
		if err == nil {
			return data, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", n.Addr, err))
		if ctx.Err() != nil {
			break // the caller gave up (or the client closed): no fault of the replica's
		}
		c.reportBad(id, n.Addr, err)
		if !errors.Is(err, wire.ErrNotFound) {
			c.cfg.Log.Warn("bad block replica", "block", id.String(), "chunkserver", n.Addr, "err", err)
		}
	}
	return nil, wire.Errorf(wire.CodeIO, "block %s: no good replica: %v", id.Short(), errors.Join(errs...))
}
