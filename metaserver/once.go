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
	wire.MMake: true, wire.MLink: true, wire.MRemove: true, wire.MRename: true, wire.MTmpfile: true,
}

// onceCache remembers the answers to MOnce requests by ID, like an NFS
// server's duplicate request cache. It lives in memory: a retry that
// reaches a restarted metaserver executes again.
type onceCache struct {
	mu struct {
		sync.Mutex
		answers map[[16]byte]onceAnswer
		order   [][16]byte // insertion order, for expiry
	}
}

// onceAnswer is kept by value: a change costs the cache no allocation
// of its own beyond the map's.
type onceAnswer struct {
	resp    wire.Message
	err     error
	at      time.Time
	running bool
	// wait is made by the first retry that finds the answer still
	// running; retries are rare, so most answers never need one.
	wait *onceWait
}

// onceWait hands a running answer to the retries waiting for it.
type onceWait struct {
	done chan struct{} // closed when resp and err are set
	resp wire.Message
	err  error
}

// do runs h for the request unless an answer for id exists (or is being
// made), in which case it returns that answer.
func (c *onceCache) do(ctx context.Context, id [16]byte, h rpc.HandlerFunc, body []byte) (wire.Message, error) {
	c.mu.Lock()
	if c.mu.answers == nil {
		c.mu.answers = make(map[[16]byte]onceAnswer)
	}
	if a, ok := c.mu.answers[id]; ok {
		if !a.running {
			c.mu.Unlock()
			return a.resp, a.err
		}
		if a.wait == nil {
			a.wait = &onceWait{done: make(chan struct{})}
			c.mu.answers[id] = a
		}
		c.mu.Unlock()
		select {
		case <-a.wait.done:
			return a.wait.resp, a.wait.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c.mu.answers[id] = onceAnswer{running: true, at: time.Now()}
	c.mu.order = append(c.mu.order, id)
	c.expireLocked()
	c.mu.Unlock()
	resp, err := h(ctx, body)
	c.mu.Lock()
	a := c.mu.answers[id]
	a.resp, a.err, a.running = resp, err, false
	c.mu.answers[id] = a
	c.mu.Unlock()
	if a.wait != nil {
		a.wait.resp, a.wait.err = resp, err
		close(a.wait.done)
	}
	return resp, err
}

func (c *onceCache) expireLocked() {
	n := 0
	for _, id := range c.mu.order {
		a := c.mu.answers[id]
		if len(c.mu.order)-n <= onceMax && time.Since(a.at) < onceKeep {
			break
		}
		if a.running {
			// keep it and everything after it
			break
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
