package rpc

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/wire"
)

// TestLimitRequestBytes: with a budget of 4 MiB, 16 clients putting
// 1 MiB at once are all answered, but at most 4 bodies are held (read
// and being handled) at any time; a body larger than the budget is
// served alone.
func TestLimitRequestBytes(t *testing.T) {
	ca := newCA(t)
	const budget, size = 4 << 20, 1 << 20
	var inHandler, most atomic.Int32
	mux := Mux{}
	On(mux, wire.CPut, func(_ context.Context, r *wire.PutReq) (wire.Message, error) {
		n := inHandler.Add(1)
		defer inHandler.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(20 * time.Millisecond)
		return &wire.Empty{}, nil
	})
	srv, err := Listen("127.0.0.1:0", tlsConf(t, ca), mux, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	srv.LimitRequestBytes(budget)
	t.Cleanup(func() { srv.Close() })

	var wg sync.WaitGroup
	errs := make(chan error, 17)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := NewClient(tlsConf(t, ca)) // a client each: the budget is the server's, not per connection
			defer c.Close()
			data := make([]byte, size)
			data[0] = byte(i)
			errs <- c.Call(context.Background(), srv.Addr(), wire.CPut, &wire.PutReq{Data: data}, &wire.Empty{})
		}()
	}
	wg.Wait()
	c := NewClient(tlsConf(t, ca))
	defer c.Close()
	errs <- c.Call(context.Background(), srv.Addr(), wire.CPut, &wire.PutReq{Data: make([]byte, budget+budget/8)}, &wire.Empty{})
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if m := most.Load(); m > budget/size || m < 2 {
		t.Fatalf("%d bodies of %d MiB held at once with a budget of %d MiB; want 2 to %d", m, size>>20, budget>>20, budget/size)
	}
	// A call's bytes are released just after its answer is sent, so
	// maybe after its caller has it.
	b := srv.budget.Load()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		b.mu.Lock()
		used, peak := b.used, b.peak
		b.mu.Unlock()
		if peak > budget {
			t.Fatalf("%d bytes of requests held at once; budget %d", peak, budget)
		}
		if used == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still taken 10 s after every call returned", used)
		}
	}
}
