package client_test

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
)

// BenchmarkSequentialWrite measures the client's write path without FUSE:
// 1 MiB writes into one file, flushed (uploaded to R replicas and
// committed) at the end, at R=1 and R=3.
func BenchmarkSequentialWrite(b *testing.B) {
	for _, r := range []int{1, 3} {
		b.Run(map[int]string{1: "R1", 3: "R3"}[r], func(b *testing.B) {
			c := testcluster.Start(b, testcluster.Options{NoMount: true, Replicas: r})
			ctx := context.Background()
			a, err := c.Client.Make(ctx, &wire.MakeReq{Parent: 1, Name: "f", Mode: 0o100644})
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 1<<20)
			rand.Read(buf)
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			f := c.Client.Open(a.Ino)
			for i := 0; i < b.N; i++ {
				buf[0], buf[1] = byte(i), byte(i>>8) // distinct blocks: no dedup
				f.Write(uint64(i)<<20, buf)
			}
			if err := f.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			f.Release(ctx)
		})
	}
}

// BenchmarkSequentialRead reads a 256 MiB file back through a cold cache.
func BenchmarkSequentialRead(b *testing.B) {
	c := testcluster.Start(b, testcluster.Options{NoMount: true, Replicas: 1})
	ctx := context.Background()
	a, err := c.Client.Make(ctx, &wire.MakeReq{Parent: 1, Name: "f", Mode: 0o100644})
	if err != nil {
		b.Fatal(err)
	}
	const size = 64 << 20
	buf := make([]byte, 1<<20)
	f := c.Client.Open(a.Ino)
	for off := 0; off < size; off += len(buf) {
		rand.Read(buf)
		f.Write(uint64(off), buf)
	}
	if err := f.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	f.Release(ctx)
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Restart(b) // a cold client cache
		f := c.Client.Open(a.Ino)
		for off := 0; off < size; off += len(buf) {
			if _, err := f.Read(ctx, uint64(off), buf); err != nil {
				b.Fatal(err)
			}
		}
		f.Release(ctx)
	}
}
