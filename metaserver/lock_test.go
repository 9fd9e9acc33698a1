package metaserver

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/wire"
)

// TestLockTableModel drives the lock table with random lock, unlock,
// upgrade and downgrade requests of three owners over a small range and
// checks every answer against a byte-by-byte model, and that an owner's
// locks stay split and merged exactly (disjoint, no two adjacent locks
// of one type).
func TestLockTableModel(t *testing.T) {
	const span = 24
	const none = 255
	for seed := uint64(0); seed < 30; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		l := newLockTable()
		var model [3][span]uint8 // owner → byte → type held, none if unlocked
		for o := range model {
			for b := range model[o] {
				model[o][b] = none
			}
		}
		req := func(o int, typ uint8, start, end uint64) *wire.LockReq {
			return &wire.LockReq{Session: 1 + uint64(o%2), Owner: uint64(o), Ino: 9, Type: typ, Start: start, End: end, Pid: uint32(100 + o)}
		}
		for step := 0; step < 300; step++ {
			o := rng.IntN(3)
			typ := uint8(rng.IntN(3))
			start := uint64(rng.IntN(span))
			end := start + uint64(rng.IntN(span-int(start)))
			// Model: conflict if another owner holds an overlapping
			// byte and one of the two is a write lock.
			conflict := false
			if typ != wire.LockUnlock {
				for other := range model {
					for b := start; b <= end && other != o; b++ {
						h := model[other][b]
						if h != none && (h == wire.LockWrite || typ == wire.LockWrite) {
							conflict = true
						}
					}
				}
			}
			resp, err := l.set(context.Background(), req(o, typ, start, end))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Conflict != conflict {
				t.Fatalf("seed %d step %d: owner %d type %d [%d,%d]: conflict %v, model says %v", seed, step, o, typ, start, end, resp.Conflict, conflict)
			}
			if !conflict {
				for b := start; b <= end; b++ {
					model[o][b] = typ
					if typ == wire.LockUnlock {
						model[o][b] = none
					}
				}
			}
			// The table holds exactly the model's bytes, merged.
			held := l.mu.held[lockKey{9, wire.LockPosix}]
			var got [3][span]uint8
			for o := range got {
				for b := range got[o] {
					got[o][b] = none
				}
			}
			for i, h := range held {
				for b := h.start; b <= h.end; b++ {
					if got[h.owner][b] != none {
						t.Fatalf("seed %d step %d: owner %d holds byte %d twice: %+v", seed, step, h.owner, b, held)
					}
					got[h.owner][b] = h.typ
				}
				for _, g := range held[i+1:] {
					if g.lockOwner == h.lockOwner && g.typ == h.typ && (g.start == h.end+1 || h.start == g.end+1) {
						t.Fatalf("seed %d step %d: adjacent locks not merged: %+v", seed, step, held)
					}
				}
			}
			if got != model {
				t.Fatalf("seed %d step %d: table %v, model %v", seed, step, got, model)
			}
		}
	}
}

func TestLockWaitWokenByUnlock(t *testing.T) {
	l := newLockTable()
	w := func(owner uint64, typ uint8, wait bool) *wire.LockReq {
		return &wire.LockReq{Session: owner, Owner: owner, Ino: 1, Kind: wire.LockFlock, Type: typ, End: wire.LockEnd, Wait: wait}
	}
	if r, _ := l.set(context.Background(), w(1, wire.LockWrite, false)); r.Conflict {
		t.Fatal("first lock refused")
	}
	got := make(chan *wire.LockResp)
	go func() {
		r, _ := l.set(context.Background(), w(2, wire.LockWrite, true))
		got <- r
	}()
	select {
	case <-got:
		t.Fatal("waiter got the lock while it was held")
	case <-time.After(100 * time.Millisecond):
	}
	l.set(context.Background(), w(1, wire.LockUnlock, false))
	select {
	case r := <-got:
		if r.Conflict {
			t.Fatal("waiter woke without the lock")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("waiter not woken by the unlock")
	}

	// A waiter whose caller gave up returns, and does not take the lock.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := l.set(ctx, w(3, wire.LockWrite, true))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-done; err == nil {
		t.Fatal("cancelled wait returned no error")
	}
	l.dropSession(2)
	if n := l.count(); n != 0 {
		t.Fatalf("%d locks left after the holder's session ended", n)
	}
}

// TestLockCancel: MCancelLock ends a wait with a conflict, also when it
// overtakes the call it names; a cancelled call whose lock is free takes
// it; nothing of a cancel stays behind its call.
func TestLockCancel(t *testing.T) {
	l := newLockTable()
	req := func(owner, call uint64, typ uint8) *wire.LockReq {
		return &wire.LockReq{Session: 9, Owner: owner, Ino: 1, Kind: wire.LockPosix, Type: typ, End: wire.LockEnd, Wait: call != 0, Call: call}
	}
	if r, _ := l.set(context.Background(), req(1, 0, wire.LockWrite)); r.Conflict {
		t.Fatal("first lock refused")
	}
	got := make(chan *wire.LockResp)
	go func() {
		r, _ := l.set(context.Background(), req(2, 7, wire.LockWrite))
		got <- r
	}()
	time.Sleep(50 * time.Millisecond)
	l.cancel(req(2, 7, wire.LockWrite))
	select {
	case r := <-got:
		if r == nil || !r.Conflict {
			t.Fatalf("cancelled wait answered %+v, want a conflict", r)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("cancelled wait still waiting")
	}

	l.cancel(req(2, 8, wire.LockWrite)) // before its call
	start := time.Now()
	if r, err := l.set(context.Background(), req(2, 8, wire.LockWrite)); err != nil || !r.Conflict {
		t.Fatalf("call after its cancel: %+v %v, want a conflict", r, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("call after its cancel waited %v", d)
	}

	l.set(context.Background(), req(1, 0, wire.LockUnlock))
	l.cancel(req(2, 9, wire.LockWrite))
	if r, err := l.set(context.Background(), req(2, 9, wire.LockWrite)); err != nil || r.Conflict {
		t.Fatalf("cancelled call on a free lock: %+v %v, want the lock", r, err)
	}
	l.mu.Lock()
	left := len(l.mu.cancelled)
	l.mu.Unlock()
	if left != 0 || l.count() != 1 {
		t.Fatalf("%d cancels and %d locks left, want 0 and 1", left, l.count())
	}
}

func TestLockDeadlockCycle(t *testing.T) {
	l := newLockTable()
	req := func(owner, start uint64, wait bool) *wire.LockReq {
		return &wire.LockReq{Session: 7, Owner: owner, Ino: 3, Type: wire.LockWrite, Start: start, End: start, Wait: wait}
	}
	ctx := context.Background()
	l.set(ctx, req(1, 0, false))
	l.set(ctx, req(2, 1, false))
	l.set(ctx, req(3, 2, false))
	ctx1, cancel := context.WithCancel(ctx)
	defer cancel()
	go l.set(ctx1, req(1, 1, true)) // 1 waits for 2
	go l.set(ctx1, req(2, 2, true)) // 2 waits for 3
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(time.Millisecond) {
		l.mu.Lock()
		n := len(l.mu.waiting)
		l.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("waiters did not register")
		}
	}
	// 3 waiting for 1 closes the cycle 3 → 1 → 2 → 3.
	if _, err := l.set(ctx, req(3, 0, true)); !errors.Is(err, &wire.Error{Code: wire.CodeDeadlock}) {
		t.Fatalf("cycle not refused: %v", err)
	}
	// A non-waiting request is just refused, as before.
	if r, err := l.set(ctx, req(3, 0, false)); err != nil || !r.Conflict {
		t.Fatalf("non-waiting request: %+v %v", r, err)
	}
}
