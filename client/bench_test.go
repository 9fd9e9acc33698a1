package client_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"syscall"
	"testing"
	"time"

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
			cpu := cpuTime()
			f := c.Client.Open(a.Ino)
			for i := 0; i < b.N; i++ {
				buf[0], buf[1] = byte(i), byte(i>>8) // distinct blocks: no dedup
				f.Write(uint64(i)<<20, buf)
			}
			if err := f.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			reportCPU(b, cpu, int64(b.N)*int64(len(buf)))
			f.Release(ctx)
		})
	}
}

// BenchmarkSequentialRead reads a 64 MiB file back through a cold cache.
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
	cpu := cpuTime()
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
	b.StopTimer()
	reportCPU(b, cpu, int64(b.N)*size)
}

// cpuTime is the CPU time (user and system) this process has used: the
// client's and the in-process servers' together.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU seconds spent per GiB moved since start: on
// a shared machine it drifts far less than MB/s does.
func reportCPU(b *testing.B, start time.Duration, bytes int64) {
	b.ReportMetric((cpuTime()-start).Seconds()/(float64(bytes)/(1<<30)), "cpu-s/GiB")
}

// BenchmarkCreateRemove measures the metadata path without FUSE: one
// create and one remove per iteration, each a round trip to the
// metaserver.
func BenchmarkCreateRemove(b *testing.B) {
	c := testcluster.Start(b, testcluster.Options{NoMount: true, Replicas: 1})
	ctx := context.Background()
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("f%d", i)
		if _, err := c.Client.Make(ctx, &wire.MakeReq{Parent: 1, Name: name, Mode: 0o100644}); err != nil {
			b.Fatal(err)
		}
		if err := c.Client.Remove(ctx, 1, name, false); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(2*b.N), "µs/call")
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(2*b.N), "cpu-µs/call")
}
