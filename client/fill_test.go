package client_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
)

// fillRecorder is a PageFiller that records the fills it is offered and
// can hold them, as the kernel holds a fill that waits for a locked page.
type fillRecorder struct {
	mu      sync.Mutex
	calls   []fillCall
	hold    chan struct{} // if not nil, fills wait until it is closed
	entered chan struct{} // receives one value per fill that started
}

type fillCall struct {
	ino, off uint64
	data     []byte
}

func (r *fillRecorder) fill(ino, off uint64, data []byte) {
	r.mu.Lock()
	r.calls = append(r.calls, fillCall{ino, off, data})
	hold := r.hold
	r.mu.Unlock()
	r.entered <- struct{}{}
	if hold != nil {
		<-hold
	}
}

func (r *fillRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// TestFillGate drives the checks that keep fills of the kernel's cache
// from putting stale bytes there (client/fill.go): a change of what the
// mount reads waits for the fill in flight before it returns (so before
// the kernel drops or cuts its pages), and a fill of an older layout, or
// any fill while a writer is open, is dropped.
func TestFillGate(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{NoMount: true, Replicas: 1})
	ctx := context.Background()
	rec := &fillRecorder{entered: make(chan struct{}, 100)}
	c.Client.SetPageFiller(rec.fill)
	a, err := c.Client.Make(ctx, &wire.MakeReq{Parent: 1, Name: "f", Mode: 0o100644})
	if err != nil {
		t.Fatal(err)
	}
	const block = 4 << 20
	content := bytes.Repeat([]byte("0123456789abcdef"), 3*block/16)
	w := c.Client.Open(a.Ino)
	w.Write(0, content)
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	w.Release(ctx)

	f := c.Client.Open(a.Ino)
	defer f.Release(ctx)
	buf := make([]byte, 4096)
	// A random read in block 1 fills the aligned MiB around it.
	if _, err := f.Read(ctx, block+block/2+5000, buf); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rec.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("a read in the middle of a block filled nothing")
	}
	if got := rec.calls[0]; got.ino != a.Ino || got.off != block+block/2 || !bytes.Equal(got.data, content[block+block/2:block+block/2+1<<20]) {
		t.Fatalf("fill of ino %d at %d, %d bytes; want ino %d, the MiB at %d", got.ino, got.off, len(got.data), a.Ino, block+block/2)
	}

	// Each change waits for a fill in flight, and drops fills of the
	// layout from before it.
	changes := []struct {
		name   string
		change func() func() // the change, returning its undo
	}{
		{"truncate", func() func() {
			if _, err := c.Client.SetAttr(ctx, &wire.SetAttrReq{Ino: a.Ino, Valid: wire.SetSize, Size: block / 2}); err != nil {
				t.Error(err)
			}
			return func() {
				if _, err := c.Client.SetAttr(ctx, &wire.SetAttrReq{Ino: a.Ino, Valid: wire.SetSize, Size: 3 * block}); err != nil {
					t.Error(err)
				}
			}
		}},
		{"another open", func() func() {
			g := c.Client.Open(a.Ino)
			return func() { g.Release(ctx) }
		}},
		{"writer", func() func() {
			f.AddWriter()
			return f.DropWriter
		}},
	}
	for _, ch := range changes {
		gen := f.LayoutGen()
		rec.mu.Lock()
		rec.hold = make(chan struct{})
		hold := rec.hold
		rec.mu.Unlock()
		go f.TryFill(gen, 0, 3*block, content[:block])
		<-rec.entered
		changed := make(chan func(), 1)
		go func() { changed <- ch.change() }()
		select {
		case <-changed:
			close(hold) // or the release at the end waits for the fill forever
			t.Fatalf("%s returned while a fill was in flight", ch.name)
		case <-time.After(100 * time.Millisecond):
		}
		close(hold)
		var undo func()
		select {
		case undo = <-changed:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s still waits after the fill ended", ch.name)
		}
		rec.mu.Lock()
		rec.hold = nil
		rec.mu.Unlock()
		n := rec.count()
		f.TryFill(gen, 0, 3*block, content[:block])
		if ch.name == "writer" {
			f.TryFill(f.LayoutGen(), 0, 3*block, content[:block])
		}
		if rec.count() != n {
			t.Fatalf("a fill went through after %s", ch.name)
		}
		undo()
	}
	// Fills of the current layout go through again once nothing changes.
	if _, _, err := f.LayoutDigest(ctx); err != nil { // loads the layout
		t.Fatal(err)
	}
	n := rec.count()
	f.TryFill(f.LayoutGen(), 0, 3*block, content[:block])
	if rec.count() != n+1 {
		t.Fatal("a fill of the current layout was dropped")
	}
}
