package client

import (
	"context"
	"fmt"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/placement"
	"github.com/cairn-fs/cairn/internal/wire"
)

// An uploaded block older than cfg.KeepUploadsAfter that is not yet
// committed is touched again, every KeepUploadsAfter while it waits
// (keepLoop) and before its commit. The metaserver's garbage collector
// deletes unreferenced blocks older than its grace period (minutes by
// default), which an upload that waited long for its file's close or
// fsync could exceed; touching restarts the clock, and a copy already
// gone is uploaded again (reupload).

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
			if err := c.reupload(ctx, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// reupload puts p back on its chunkservers. Its bytes are usually no
// longer in memory (startUploadLocked drops them once stored), so they
// come from the cache or from any replica that still has them, verified.
func (c *Client) reupload(ctx context.Context, p *pendingBlock) error {
	p.f.mu.Lock()
	data := p.data
	p.f.mu.Unlock()
	if data == nil {
		var err error
		if data, err = c.getBlock(ctx, p.id); err != nil {
			return fmt.Errorf("an upload waiting for its commit was lost: %w", err)
		}
	}
	return c.putBlock(ctx, p.id, data)
}

// keepLoop touches, every cfg.KeepUploadsAfter, the stored uploads of
// open files that still wait for their commit, so that a long write
// without close or fsync never outlives the garbage collector's grace
// period: their bytes are no longer in memory to upload again.
func (c *Client) keepLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.KeepUploadsAfter)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		var stored []*pendingBlock
		for _, f := range c.openFiles() {
			f.mu.Lock()
			for _, p := range f.mu.pending {
				select {
				case <-p.done:
					if p.err == nil {
						stored = append(stored, p)
					}
				default: // still uploading
				}
			}
			f.mu.Unlock()
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.KeepUploadsAfter)
		if err := c.keepUploads(ctx, stored); err != nil {
			c.cfg.Log.Warn("keeping uploads alive until their commit", "err", err)
		}
		cancel()
	}
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
