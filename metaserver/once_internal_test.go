package metaserver

import (
	"context"
	"encoding/binary"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/cairn-fs/cairn/internal/wire"
)

// TestOnceCacheBounded: the duplicate-request cache keeps at most
// onceMax answers however many changes come within onceKeep, and they
// take about the memory the README states (60 MB).
func TestOnceCacheBounded(t *testing.T) {
	var c onceCache
	heap := func() int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	answer := func(context.Context, []byte) (wire.Message, error) {
		return &wire.ChangeResp{Attr: wire.Attr{Ino: 7}, Parent: wire.Attr{Ino: 1}}, nil
	}
	before := heap()
	for i := range onceMax + onceMax/4 {
		var id [16]byte
		binary.BigEndian.PutUint64(id[:], uint64(i))
		if _, err := c.do(context.Background(), id, answer, nil); err != nil {
			t.Fatal(err)
		}
	}
	grew := heap() - before
	if n := len(c.mu.answers); n > onceMax {
		t.Fatalf("%d answers kept; want at most %d", n, onceMax)
	}
	t.Logf("%d answers take %d MB", len(c.mu.answers), grew>>20)
	if grew > 80<<20 {
		t.Fatalf("%d answers take %d MB; want at most 80", len(c.mu.answers), grew>>20)
	}
}

// TestOnceRetryWhileRunning: a retry that arrives while the first call
// is still running waits for it and gets its answer; the change runs
// once. A retry after it is done gets the same answer from the cache.
func TestOnceRetryWhileRunning(t *testing.T) {
	var c onceCache
	release := make(chan struct{})
	var runs atomic.Int32
	h := func(context.Context, []byte) (wire.Message, error) {
		runs.Add(1)
		<-release
		return &wire.ChangeResp{Attr: wire.Attr{Ino: 7}}, nil
	}
	id := [16]byte{1}
	first := make(chan wire.Message)
	go func() {
		resp, _ := c.do(context.Background(), id, h, nil)
		first <- resp
	}()
	for runs.Load() == 0 {
		runtime.Gosched()
	}
	retry := make(chan wire.Message)
	go func() {
		resp, _ := c.do(context.Background(), id, h, nil)
		retry <- resp
	}()
	for {
		c.mu.Lock()
		waiting := c.mu.answers[id].wait != nil
		c.mu.Unlock()
		if waiting {
			break
		}
		runtime.Gosched()
	}
	close(release)
	a, b := <-first, <-retry
	if a != b {
		t.Fatalf("the retry got %v, the first call %v; want the same answer", b, a)
	}
	again, err := c.do(context.Background(), id, h, nil)
	if again != a || err != nil {
		t.Fatalf("a retry after the answer: %v, %v; want %v", again, err, a)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("the change ran %d times; want once", n)
	}
}
