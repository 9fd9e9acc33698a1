package metaserver

import (
	"context"
	"crypto/rand"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/wire"
)

// BenchmarkChange measures the metaserver's own cost of each namespace
// change, without the transport: the request is decoded, wrapped in
// MOnce where a client wraps it, run by the mux's handler and its answer
// encoded, as the rpc server does. Each op is one call, or a pair of
// calls that undo each other.
func BenchmarkChange(b *testing.B) {
	st := newStore(b)
	s := &Server{store: st}
	mux := s.mux()
	ctx := context.Background()
	call := func(m wire.Method, req wire.Message) {
		body := wire.Marshal(req)
		if onceMethods[m] {
			o := &wire.OnceReq{Method: m, Body: body}
			rand.Read(o.ID[:])
			m, body = wire.MOnce, wire.Marshal(o)
		}
		resp, err := mux[m](ctx, body)
		if err != nil {
			b.Fatal(err)
		}
		resp.Append(nil)
	}
	// Wall time on a shared machine drifts; the process's CPU time per
	// op (the Badger goroutines' included) drifts far less.
	run := func(name string, f func(b *testing.B)) {
		b.Run(name, func(b *testing.B) {
			start := cpuTime()
			f(b)
			b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
	file := &wire.MakeReq{Parent: RootIno, Name: "f", Mode: syscall.S_IFREG | 0o644}
	run("CreateUnlink", func(b *testing.B) {
		for range b.N {
			call(wire.MMake, file)
			call(wire.MRemove, &wire.RemoveReq{Parent: RootIno, Name: "f"})
		}
	})
	run("MkdirRmdir", func(b *testing.B) {
		for range b.N {
			call(wire.MMake, &wire.MakeReq{Parent: RootIno, Name: "d", Mode: syscall.S_IFDIR | 0o755})
			call(wire.MRemove, &wire.RemoveReq{Parent: RootIno, Name: "d", Dir: true})
		}
	})
	run("Rename", func(b *testing.B) {
		call(wire.MMake, file)
		names := [2]string{"f", "g"}
		for i := range b.N {
			call(wire.MRename, &wire.RenameReq{OldParent: RootIno, OldName: names[i%2], NewParent: RootIno, NewName: names[(i+1)%2]})
		}
		call(wire.MRemove, &wire.RemoveReq{Parent: RootIno, Name: names[b.N%2]})
	})
	run("SetAttr", func(b *testing.B) {
		call(wire.MMake, file)
		a, err := st.lookup(RootIno, "f")
		if err != nil {
			b.Fatal(err)
		}
		for i := range b.N {
			call(wire.MSetAttr, &wire.SetAttrReq{Ino: a.Ino, Valid: wire.SetMode, Mode: uint32(0o600 + i%2)})
		}
		call(wire.MRemove, &wire.RemoveReq{Parent: RootIno, Name: "f"})
	})
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
