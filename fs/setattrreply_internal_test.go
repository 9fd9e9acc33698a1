package fs

import (
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/wire"
)

// TestSetAttrReplyAnswersOnce: a SETATTR's reply answers one GETATTR of
// its inode, and none once another change began or ended since it
// began, or two SETATTRs overlapped (their replies may come in either
// order), or the timeout passed.
func TestSetAttrReplyAnswersOnce(t *testing.T) {
	a := wire.Attr{Ino: 7, Mode: 0o100644}
	var r setAttrReply
	r.end(r.begin(), a, time.Minute)
	if _, ok := r.take(8); ok {
		t.Fatal("answered for another inode")
	}
	if got, ok := r.take(7); !ok || got != a {
		t.Fatalf("take = %v, %v; want the reply", got, ok)
	}
	if _, ok := r.take(7); ok {
		t.Fatal("answered twice")
	}

	r.end(r.begin(), a, time.Minute)
	r.changing()
	if _, ok := r.take(7); ok {
		t.Fatal("answered after another change began")
	}

	at := r.begin()
	done := r.changing()
	done()
	r.end(at, a, time.Minute)
	if _, ok := r.take(7); ok {
		t.Fatal("kept although a change began and ended during the SETATTR")
	}

	first, second := r.begin(), r.begin()
	r.end(first, a, time.Minute)
	r.end(second, a, time.Minute)
	if _, ok := r.take(7); ok {
		t.Fatal("kept the reply of one of two overlapping SETATTRs")
	}

	r.end(r.begin(), a, time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	if _, ok := r.take(7); ok {
		t.Fatal("answered after the timeout")
	}
}
