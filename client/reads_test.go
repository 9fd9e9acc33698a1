package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
)

// TestConcurrentReadsShareRoundTrips: lookups and getattrs from many
// goroutines at once, as git status sends them, each get their own
// right answer (a missing name its ENOENT), and those that queued behind
// the calls already out went to the metaserver together, in fewer round
// trips than calls.
func TestConcurrentReadsShareRoundTrips(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{NoMount: true})
	ctx := context.Background()
	const files, workers, rounds = 64, 32, 20
	inos := make([]uint64, files)
	for i := range inos {
		a, err := c.Client.Make(ctx, &wire.MakeReq{Parent: 1, Name: fmt.Sprint("f", i), Mode: 0o100600 | uint32(i%8)})
		if err != nil {
			t.Fatal(err)
		}
		inos[i] = a.Ino
	}
	lookups, getattrs := c.Client.MetaCalls(wire.MLookup), c.Client.MetaCalls(wire.MGetAttr)
	batches := c.Client.MetaCalls(wire.MBatch)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				i := (w*rounds + r) % files
				want := uint32(0o100600 | i%8)
				if a, err := c.Client.GetAttr(ctx, inos[i]); err != nil || a.Ino != inos[i] || a.Mode != want {
					errs <- fmt.Errorf("getattr of f%d: ino %d mode %o, err %v; want ino %d mode %o", i, a.Ino, a.Mode, err, inos[i], want)
					return
				}
				if a, err := c.Client.Lookup(ctx, 1, fmt.Sprint("f", i)); err != nil || a.Ino != inos[i] || a.Mode != want {
					errs <- fmt.Errorf("lookup of f%d: ino %d mode %o, err %v; want ino %d mode %o", i, a.Ino, a.Mode, err, inos[i], want)
					return
				}
				if _, err := c.Client.Lookup(ctx, 1, fmt.Sprint("absent", i)); !errors.Is(err, wire.ErrNotFound) {
					errs <- fmt.Errorf("lookup of a missing name: %v, want ENOENT", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	calls := c.Client.MetaCalls(wire.MLookup) - lookups + c.Client.MetaCalls(wire.MGetAttr) - getattrs
	if want := uint64(workers * rounds * 3); calls != want {
		t.Errorf("%d lookups and getattrs counted, want %d", calls, want)
	}
	if n := c.Client.MetaCalls(wire.MBatch) - batches; n == 0 {
		t.Errorf("%d goroutines asking at once: no call went in a batch", workers)
	} else {
		t.Logf("%d calls, %d batches", calls, n)
	}
}
