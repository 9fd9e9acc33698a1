package client_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/client"
	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
)

// TestLongWriteWithoutFlush: a writer that keeps every upload slot busy
// and never flushes makes progress (uploads finishing while it waits for
// a slot do not wait for it), and the file reads back before and after
// the flush.
func TestLongWriteWithoutFlush(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{NoMount: true, Replicas: 1, Chunkservers: 1})
	ctx := context.Background()
	cl, err := client.New(ctx, client.Config{Meta: c.Meta.Addr(), CA: c.CA, MaxInflight: 1, CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	a, err := cl.Make(ctx, &wire.MakeReq{Parent: 1, Name: "f", Mode: 0o100644})
	if err != nil {
		t.Fatal(err)
	}
	f := cl.Open(a.Ino)
	defer f.Release(ctx)
	buf := make([]byte, 1<<20)
	const mib = 24
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range mib {
			buf[0] = byte(i)
			f.Write(uint64(i)<<20, buf)
		}
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("writes without a flush stopped making progress")
	}
	check := func(when string) {
		t.Helper()
		got := make([]byte, 1<<20)
		for i := range mib {
			if n, err := f.Read(ctx, uint64(i)<<20, got); err != nil || n != len(got) || got[0] != byte(i) {
				t.Fatalf("%s: MiB %d: n=%d err=%v first byte %d", when, i, n, err, got[0])
			}
		}
	}
	check("unflushed") // most blocks were uploaded and dropped from memory: fetched by ID
	if err := f.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	check("flushed")
}

// TestCacheMemoryWithinLimit writes many files that each end in a
// partly filled block, as cp does with its 128 KiB writes: the heap
// grows by about the cache's limit, not by the 4 MiB buffer each last
// block was allocated in (the cache kept them all pinned).
func TestCacheMemoryWithinLimit(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{NoMount: true, Replicas: 1, Chunkservers: 1})
	ctx := context.Background()
	const limit = 8 << 20
	cl, err := client.New(ctx, client.Config{Meta: c.Meta.Addr(), CA: c.CA, CacheBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	write := func(name string, size, chunk int) {
		a, err := cl.Make(ctx, &wire.MakeReq{Parent: 1, Name: name, Mode: 0o100644})
		if err != nil {
			t.Fatal(err)
		}
		f := cl.Open(a.Ino)
		buf := make([]byte, chunk)
		for off := 0; off < size; off += chunk {
			buf[0] = byte(off)
			copy(buf[1:], name)
			f.Write(uint64(off), buf[:min(chunk, size-off)])
		}
		if err := f.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := f.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	before := heap()
	for i := range 60 {
		write(fmt.Sprint("partial", i), 200<<10, 128<<10)
	}
	if grew := int64(heap()) - int64(before); grew > 3*limit {
		t.Fatalf("after writing 60 files of 200 KiB with a cache of %d MiB, the heap grew by %d MiB", limit>>20, grew>>20)
	}

}
