package client

import (
	"sync/atomic"

	"github.com/cairn-fs/cairn/internal/wire"
)

// callCounts counts the metaserver calls a client made, by method, so
// that what an operation costs in round trips can be measured and
// tested.
type callCounts struct {
	n [64]atomic.Uint64 // by method; wire's methods number fewer
}

func (cc *callCounts) add(m wire.Method) {
	if int(m) < len(cc.n) {
		cc.n[m].Add(1)
	}
}

// MetaCalls returns how many calls of method m this client has made to
// the metaserver (a retry counts once; a change wrapped in MOnce counts
// as its own method; a call sent in an MBatch counts as its own method,
// and the batch once as MBatch).
func (c *Client) MetaCalls(m wire.Method) uint64 {
	if int(m) >= len(c.calls.n) {
		return 0
	}
	return c.calls.n[m].Load()
}
