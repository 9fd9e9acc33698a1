package client

import (
	"context"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/placement"
	"github.com/cairn-fs/cairn/internal/wire"
)

// An uploaded block older than cfg.KeepUploadsAfter that is not yet
// committed is touched again before its commit. The metaserver's garbage
// collector deletes unreferenced blocks older than its grace period
// (minutes by default), which an upload that waited long for its file's
// close or fsync could exceed; touching restarts the clock, and a block
// already gone is uploaded again from memory.
// touchBatch bounds the IDs in one touch request, well inside the
// message size limit.
const touchBatch = 1 << 14

// keepUploads makes sure the old blocks of a batch about to be committed
// are on their chunkservers and will stay there for a grace period.
func (c *Client) keepUploads(ctx context.Context, batch []*pendingBlock) error {
	var old []*pendingBlock
	for _, p := range batch {
		if time.Since(p.at) > c.cfg.KeepUploadsAfter {
			old = append(old, p)
		}
	}
	if len(old) == 0 {
		return nil
	}
	m, r := c.clusterMap()
	// Ask each node about the blocks it should hold.
	ask := map[string][]block.ID{}
	for _, p := range old {
		ranked := c.suspects.order(placement.Replicas(p.id, &m))
		for _, n := range ranked[:min(r, len(ranked))] {
			ask[n.Addr] = append(ask[n.Addr], p.id)
		}
	}
	missing := map[block.ID]bool{}
	for addr, all := range ask {
		for len(all) > 0 {
			ids := all[:min(len(all), touchBatch)]
			all = all[len(ids):]
			var resp wire.TouchResp
			err := c.rpc.Call(ctx, addr, wire.CTouch, &wire.TouchReq{IDs: ids}, &resp)
			c.suspects.note(addr, err)
			if err != nil {
				for _, id := range ids {
					missing[id] = true
				}
				continue
			}
			for _, id := range resp.Missing {
				missing[id] = true
			}
		}
	}
	for _, p := range old {
		if missing[p.id] {
			if err := c.putBlock(ctx, p.id, p.data); err != nil {
				return err
			}
		}
	}
	return nil
}

// adaptToSettings keeps uploads alive well within the metaserver's grace
// period, however short it was set.
func (c *Client) adaptToSettings(ctx context.Context) {
	var st wire.SettingsResp
	if err := c.rpc.Call(ctx, c.cfg.Meta, wire.MSettings, &wire.Empty{}, &st); err != nil {
		c.cfg.Log.Warn("metaserver settings", "meta", c.cfg.Meta, "err", err)
		return
	}
	if quarter := time.Duration(st.GCGrace) / 4; quarter > 0 && quarter < c.cfg.KeepUploadsAfter {
		c.cfg.KeepUploadsAfter = quarter
	}
}
