package client_test

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
)

// TestAttrAndLayoutNeverGoBackDuringCommits: while one goroutine appends
// and flushes, others fetch the file's attributes and read what was
// flushed. An answer the metaserver gave just before a commit landed
// must neither shrink the size this mount reports (the kernel would drop
// cached and mmapped pages: sqlite's -shm) nor be cached as the layout
// (reads would miss the committed bytes).
func TestAttrAndLayoutNeverGoBackDuringCommits(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{NoMount: true})
	ctx := context.Background()
	a, err := c.Client.Make(ctx, &wire.MakeReq{Parent: 1, Name: "grow", Mode: 0o100644})
	if err != nil {
		t.Fatal(err)
	}
	f := c.Client.Open(a.Ino)
	defer f.Release(ctx)
	const rounds, chunk = 100, 100
	var flushed atomic.Uint64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan string, 10)
	wg.Add(2)
	go func() { // attributes never shrink
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			floor := flushed.Load()
			attr, err := c.Client.GetAttr(ctx, a.Ino)
			if err != nil {
				errs <- err.Error()
				return
			}
			if attr.Size < floor {
				errs <- "size went back"
				return
			}
		}
	}()
	go func() { // flushed bytes are always read back
		defer wg.Done()
		buf := make([]byte, chunk)
		for {
			select {
			case <-stop:
				return
			default:
			}
			end := flushed.Load()
			if end == 0 {
				continue
			}
			n, err := f.Read(ctx, end-chunk, buf)
			if err != nil || n != chunk || buf[0] != byte(end/chunk) {
				errs <- "read missed flushed bytes"
				return
			}
		}
	}()
	for i := uint64(1); i <= rounds; i++ {
		f.Write((i-1)*chunk, bytes.Repeat([]byte{byte(i)}, chunk))
		if err := f.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		flushed.Store(i * chunk)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}
