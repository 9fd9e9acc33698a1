package fs

import (
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/wire"
)

// TestDirAttrsOverlap: attributes are kept only from a change that had
// its directory to itself, answer one GETATTR, and are dropped by a
// setattr or xattr change of the directory.
func TestDirAttrsOverlap(t *testing.T) {
	var c dirAttrs
	const dir, ttl = 7, time.Minute
	at := func(nlink uint32) wire.Attr { return wire.Attr{Ino: dir, Nlink: nlink} }

	e := c.begin(dir)
	c.end(dir, e, at(3), ttl)
	if a, ok := c.take(dir); !ok || a.Nlink != 3 {
		t.Fatalf("after a lone change: %+v %v, want nlink 3", a, ok)
	}
	if _, ok := c.take(dir); ok {
		t.Fatal("kept attributes answered a second GETATTR")
	}

	// Two changes in flight: whichever order the answers come in, neither
	// is kept (the earlier answer may not show the later change).
	e1, e2 := c.begin(dir), c.begin(dir)
	c.end(dir, e2, at(4), ttl)
	c.end(dir, e1, at(5), ttl)
	if a, ok := c.take(dir); ok {
		t.Fatalf("kept %+v from overlapping changes", a)
	}
	e1, e2 = c.begin(dir), c.begin(dir)
	c.end(dir, e1, at(4), ttl)
	c.end(dir, e2, at(5), ttl)
	if a, ok := c.take(dir); ok {
		t.Fatalf("kept %+v from overlapping changes", a)
	}

	// A GETATTR while a change is in flight asks the metaserver.
	c.end(dir, c.begin(dir), at(3), ttl)
	e = c.begin(dir)
	if _, ok := c.take(dir); ok {
		t.Fatal("answered while a change was in flight")
	}
	c.end(dir, e, wire.Attr{}, ttl) // failed: no attributes
	if _, ok := c.take(dir); ok {
		t.Fatal("kept attributes across a failed change")
	}

	// A setattr drops kept attributes and any answer still in flight.
	c.end(dir, c.begin(dir), at(3), ttl)
	c.forget(dir)
	if _, ok := c.take(dir); ok {
		t.Fatal("kept attributes after a setattr")
	}
	e = c.begin(dir)
	c.forget(dir)
	c.end(dir, e, at(3), ttl)
	if _, ok := c.take(dir); ok {
		t.Fatal("kept an answer that was in flight during a setattr")
	}

	// Expired, or for another inode, or with no timeout: not answered.
	c.end(dir, c.begin(dir), at(3), time.Nanosecond)
	time.Sleep(time.Millisecond)
	if _, ok := c.take(dir); ok {
		t.Fatal("answered after the timeout")
	}
	c.end(dir, c.begin(dir), wire.Attr{Ino: 8}, ttl)
	if _, ok := c.take(dir); ok {
		t.Fatal("answered with another inode's attributes")
	}
	c.end(dir, c.begin(dir), at(3), 0)
	if _, ok := c.take(dir); ok {
		t.Fatal("answered with a zero attribute timeout")
	}
	if len(c.mu.dirs) != 0 {
		t.Fatalf("%d directories still tracked with nothing in flight", len(c.mu.dirs))
	}
}
