package metaserver

import (
	"context"
	"sync"
	"time"

	"github.com/cairn-fs/cairn/internal/rpc"
	"github.com/cairn-fs/cairn/internal/wire"
)

// onceKeep is how long an answer is kept for a retry: well past the
// clients' retry window (60s by default).
const onceKeep = 10 * time.Minute

// onceMax bounds the answers kept; the oldest go first.
const onceMax = 1 << 17

// onceMethods are the namespace changes a client may wrap in MOnce: the
// ones whose second execution would answer differently from the first.
var onceMethods = map[wire.Method]bool{
	wire.MMake: true, wire.MLink: true, wire.MRemove: true, wire.MRename: true,
}

// onceCache remembers the answers to MOnce requests by ID, like an NFS
// server's duplicate request cache. It lives in memory: a retry that
// reaches a restarted metaserver executes again.
type onceCache struct {
	mu struct {
		sync.Mutex
		answers map[[16]byte]*onceAnswer
		order   [][16]byte // insertion order, for expiry
	}
}

type onceAnswer struct {
	done chan struct{} // closed when resp and err are set
	resp wire.Message
	err  error
	at   time.Time
}

// do runs h for the request unless an answer for id exists (or is being
// made), in which case it returns that answer.
func (c *onceCache) do(ctx context.Context, id [16]byte, h rpc.HandlerFunc, body []byte) (wire.Message, error) {
	c.mu.Lock()
	if c.mu.answers == nil {
		c.mu.answers = make(map[[16]byte]*onceAnswer)
	}
	if a, ok := c.mu.answers[id]; ok {
		c.mu.Unlock()
		select {
		case <-a.done:
			return a.resp, a.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	a := &onceAnswer{done: make(chan struct{}), at: time.Now()}
	c.mu.answers[id] = a
	c.mu.order = append(c.mu.order, id)
	c.expireLocked()
	c.mu.Unlock()
	a.resp, a.err = h(ctx, body)
	close(a.done)
	return a.resp, a.err
}

func (c *onceCache) expireLocked() {
	n := 0
	for _, id := range c.mu.order {
		a := c.mu.answers[id]
		if len(c.mu.order)-n <= onceMax && time.Since(a.at) < onceKeep {
			break
		}
		select {
		case <-a.done:
		default:
			// still running: keep it and everything after it
			c.mu.order = c.mu.order[n:]
			return
		}
		delete(c.mu.answers, id)
		n++
	}
	c.mu.order = c.mu.order[n:]
}

// onceMux adds MOnce to m, dispatching to m's own handlers.
func (s *Server) onceMux(m rpc.Mux) {
	var cache onceCache
	rpc.On(m, wire.MOnce, func(ctx context.Context, r *wire.OnceReq) (wire.Message, error) {
		h := m[r.Method]
		if !onceMethods[r.Method] || h == nil {
			return nil, wire.Errorf(wire.CodeInvalid, "method %d cannot be wrapped in MOnce", r.Method)
		}
		return cache.do(ctx, r.ID, h, r.Body)
	})
}
