package client

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/cairn-fs/cairn/internal/wire"
)

// Lookups and getattrs come in bursts from many threads at once: git
// status stats every file of a checkout from about twenty. Each call
// costs its round trip far more CPU than the metaserver spends
// answering it, so when readsInFlight calls are already out, the ones
// that arrive queue and go together in one MBatch as soon as a call
// returns. A call that finds a free slot goes at once, alone: a single
// reader, or two, wait for nothing.
//
// A queued call is sent after it was asked, so it sees at least what
// had happened by then: the answer is as fresh as a call sent at once.
type reads struct {
	c *Client
	// unbatched is set when the metaserver predates MBatch: every call
	// then goes alone.
	unbatched atomic.Bool
	mu        struct {
		sync.Mutex
		inFlight int // calls and batches out
		queue    []*queuedRead
	}
}

// readsInFlight is how many calls or batches may be out at once before
// new calls queue. With 16 threads stat-ing, 1 (bigger batches) was 10%
// slower than 4.
const readsInFlight = 4

// maxBatch bounds the calls in one MBatch; more stay queued for the next.
const maxBatch = 256

type queuedRead struct {
	m    wire.Method
	req  wire.Message
	resp wire.Message
	err  error
	done chan struct{}
}

// call makes the read-only call m, alone or in a batch.
func (r *reads) call(ctx context.Context, m wire.Method, req, resp wire.Message) error {
	r.mu.Lock()
	if r.mu.inFlight < readsInFlight || r.unbatched.Load() {
		r.mu.inFlight++
		r.mu.Unlock()
		err := r.c.meta(ctx, m, req, resp)
		r.finished()
		return err
	}
	q := &queuedRead{m: m, req: req, resp: resp, done: make(chan struct{})}
	r.mu.queue = append(r.mu.queue, q)
	r.mu.Unlock()
	select {
	case <-q.done:
		return q.err
	case <-ctx.Done():
		return ctx.Err() // the batch's answer to q is dropped
	}
}

// finished frees the slot of a call or batch that returned, or sends
// the calls queued meanwhile in it.
func (r *reads) finished() {
	r.mu.Lock()
	if len(r.mu.queue) == 0 {
		r.mu.inFlight--
		r.mu.Unlock()
		return
	}
	n := min(len(r.mu.queue), maxBatch)
	batch := r.mu.queue[:n:n]
	r.mu.queue = r.mu.queue[n:]
	r.mu.Unlock()
	go r.send(batch)
}

// send makes the calls of batch in one round trip, answers each, and
// passes the slot on.
func (r *reads) send(batch []*queuedRead) {
	defer r.finished()
	ctx, cancel := context.WithTimeout(context.Background(), r.c.cfg.Timeout)
	defer cancel()
	if len(batch) == 1 || r.unbatched.Load() {
		r.sendAlone(ctx, batch)
		return
	}
	req := &wire.BatchReq{Calls: make([]wire.BatchCall, len(batch))}
	for i, q := range batch {
		r.c.calls.add(q.m)
		req.Calls[i] = wire.BatchCall{Method: q.m, Body: wire.Marshal(q.req)}
	}
	var resp wire.BatchResp
	err := r.c.meta(ctx, wire.MBatch, req, &resp)
	if errors.Is(err, &wire.Error{Code: wire.CodeUnknown}) {
		r.unbatched.Store(true) // a metaserver that predates MBatch
		r.sendAlone(ctx, batch)
		return
	}
	if err == nil && len(resp.Results) != len(batch) {
		err = wire.Errorf(wire.CodeMalformed, "metaserver answered %d calls of a batch of %d", len(resp.Results), len(batch))
	}
	for i, q := range batch {
		q.err = err
		if err == nil {
			if res := resp.Results[i]; res.Err.Code != wire.CodeOK {
				q.err = &res.Err
			} else {
				q.err = wire.Unmarshal(res.Body, q.resp)
			}
		}
		close(q.done)
	}
}

// sendAlone makes each call of batch on its own, one after another.
func (r *reads) sendAlone(ctx context.Context, batch []*queuedRead) {
	for _, q := range batch {
		q.err = r.c.meta(ctx, q.m, q.req, q.resp)
		close(q.done)
	}
}
