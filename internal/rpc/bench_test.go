package rpc

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/pki"
	"github.com/cairn-fs/cairn/internal/wire"
)

// BenchmarkBulkPut measures QUIC bulk transfer as a chunkserver sees it:
// 4 MiB requests, 8 in flight on one connection, answered at once. It
// is the ceiling of the block upload path without hashing or disk: run
// it with -cpuprofile to see quic-go's CPU per GiB.
func BenchmarkBulkPut(b *testing.B) {
	mux := Mux{}
	On(mux, wire.CPut, func(_ context.Context, r *wire.PutReq) (wire.Message, error) {
		return &wire.Empty{}, nil
	})
	srv, cl := benchServer(b, mux)
	ctx := context.Background()
	data := make([]byte, 4<<20)
	if err := cl.Call(ctx, srv.Addr(), wire.CPut, &wire.PutReq{Data: data}, &wire.Empty{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	cpu := cpuTime()
	const inflight = 8
	sem := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	for i := 0; i < b.N; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := cl.Call(ctx, srv.Addr(), wire.CPut, &wire.PutReq{Data: data}, &wire.Empty{}); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric((cpuTime()-cpu).Seconds()/(float64(b.N)*float64(len(data))/(1<<30)), "cpu-s/GiB")
	cl.mu.Lock()
	for _, p := range cl.mu.peers {
		st := p.conn.ConnectionStats()
		b.Logf("client sent %d packets (%d lost), received %d (acks): %.1f data packets per ack; cwnd %d KiB, srtt %v",
			st.PacketsSent, st.PacketsLost, st.PacketsReceived, float64(st.PacketsSent)/float64(max(st.PacketsReceived, 1)), st.CongestionWindow>>10, st.SmoothedRTT)
	}
	cl.mu.Unlock()
}

// BenchmarkSmallCall makes one small call after another, as the
// metadata path does, and reports the packets each costs both ways.
func BenchmarkSmallCall(b *testing.B) {
	mux := Mux{}
	On(mux, wire.MGetAttr, func(_ context.Context, r *wire.InoReq) (wire.Message, error) {
		return &wire.AttrResp{Attr: wire.Attr{Ino: r.Ino}}, nil
	})
	srv, cl := benchServer(b, mux)
	ctx := context.Background()
	call := func(i int) {
		if err := cl.Call(ctx, srv.Addr(), wire.MGetAttr, &wire.InoReq{Ino: uint64(i)}, &wire.AttrResp{}); err != nil {
			b.Fatal(err)
		}
	}
	call(0) // connect
	p := cl.mu.peers[srv.Addr()]
	before := p.conn.ConnectionStats()
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		call(i)
	}
	b.StopTimer()
	after := p.conn.ConnectionStats()
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/call")
	b.ReportMetric(float64(after.PacketsSent+after.PacketsReceived-before.PacketsSent-before.PacketsReceived)/float64(b.N), "packets/call")
}

// benchServer serves mux on loopback and returns it with a client of the
// same cluster; both are closed when the benchmark ends.
func benchServer(b *testing.B, mux Mux) (*Server, *Client) {
	ca, _, err := pki.LoadOrCreate(filepath.Join(b.TempDir(), "ca.pem"))
	if err != nil {
		b.Fatal(err)
	}
	conf, err := ca.TLSConfig()
	if err != nil {
		b.Fatal(err)
	}
	srv, err := Listen("127.0.0.1:0", conf, mux, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	cl := NewClient(conf)
	b.Cleanup(cl.Close)
	return srv, cl
}

// cpuTime is the CPU time (user and system) this process has used, on
// both ends of the connection.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
