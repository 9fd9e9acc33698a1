package rpc

import (
	"context"
	"sync"
)

// LimitRequestBytes bounds the bytes of request bodies the server holds
// at once to n (a chunkserver's blocks being received), however many
// clients send at once: a request whose body does not fit waits, before
// its body is read, until earlier ones are answered; until then its
// bytes stay with the sender, held back by QUIC flow control. A body
// larger than n waits until it is alone. Requests already being served
// are not counted: call it right after Listen.
func (s *Server) LimitRequestBytes(n int64) {
	s.budget.Store(&byteBudget{limit: n, freed: make(chan struct{})})
}

// byteBudget hands out bytes up to a limit.
type byteBudget struct {
	limit int64
	mu    sync.Mutex
	used  int64
	peak  int64         // the most ever in use, for tests
	freed chan struct{} // closed, and replaced, whenever bytes are released
}

// acquire waits until n bytes are free (all of them, if n is more than
// the limit) and takes them; it returns what to pass to release.
func (b *byteBudget) acquire(ctx context.Context, n int64) (int64, error) {
	n = min(n, b.limit)
	for {
		b.mu.Lock()
		if b.used+n <= b.limit {
			b.used += n
			b.peak = max(b.peak, b.used)
			b.mu.Unlock()
			return n, nil
		}
		freed := b.freed
		b.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}
