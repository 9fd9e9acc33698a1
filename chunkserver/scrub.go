package chunkserver

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/wire"
)

// scrub re-hashes stored blocks after `after`, in ID order, until it has
// read maxBytes, at no more than cfg.ScrubRate bytes per second so that
// it does not starve client reads. A block that fails its hash is moved
// to quarantine/ and listed in the answer, so that the metaserver has a
// good copy fetched to replace it.
func (s *Server) scrub(ctx context.Context, after block.ID, maxBytes uint64) (*wire.ScrubResp, error) {
	resp := &wire.ScrubResp{Done: true}
	start := time.Now()
	var walkErr error
	err := s.store.walk(after, func(id block.ID, fi os.FileInfo) bool {
		if resp.Bytes >= maxBytes || ctx.Err() != nil {
			resp.Done = false
			return false
		}
		_, err := s.store.get(id)
		switch {
		case errors.Is(err, wire.ErrCorrupt):
			s.cfg.Log.Error("scrub: block fails its hash; quarantined", "block", id.String(), "dir", s.cfg.Dir)
			if qerr := s.store.quarantine(id); qerr != nil {
				walkErr = qerr
				return false
			}
			resp.Bad = append(resp.Bad, id)
			s.stats.corrupt.Add(1)
		case errors.Is(err, wire.ErrNotFound):
			// deleted meanwhile
		case err != nil:
			walkErr = err
			return false
		}
		resp.Next = id
		resp.Checked++
		resp.Bytes += uint64(fi.Size())
		s.stats.scrubbed.Add(uint64(fi.Size()))
		// Sleep off whatever we read faster than the rate allows.
		due := start.Add(time.Duration(float64(resp.Bytes) / float64(s.cfg.ScrubRate) * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		return true
	})
	if err == nil {
		err = walkErr
	}
	return resp, err
}
