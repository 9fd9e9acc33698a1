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

// TestDirAttrsBounded: attributes kept for GETATTRs that never come do
// not pile up: past maxDirAttrs directories they are swept.
func TestDirAttrsBounded(t *testing.T) {
	var c dirAttrs
	for dir := uint64(2); dir < 3*maxDirAttrs; dir++ {
		c.end(dir, c.begin(dir), wire.Attr{Ino: dir}, time.Minute)
		if n := c.held(); n > maxDirAttrs+1 {
			t.Fatalf("after changes in %d directories, %d kept; want at most %d", dir-1, n, maxDirAttrs+1)
		}
	}
	// A change in flight survives a sweep, and its answer is kept.
	const busy = 1
	e := c.begin(busy)
	for dir := uint64(2); dir < maxDirAttrs+10; dir++ {
		c.end(dir, c.begin(dir), wire.Attr{Ino: dir}, time.Minute)
	}
	c.end(busy, e, wire.Attr{Ino: busy, Nlink: 9}, time.Minute)
	if a, ok := c.take(busy); !ok || a.Nlink != 9 {
		t.Fatalf("a change in flight during a sweep: kept %+v %v, want nlink 9", a, ok)
	}
}

// TestXattrCacheBounded: cached values stay within maxXattrBytes however
// large each is.
func TestXattrCacheBounded(t *testing.T) {
	var xc xattrCache
	big := make([]byte, 64<<10)
	for ino := uint64(1); ino < 1000; ino++ {
		xc.put(xattrKey{ino, "system.posix_acl_access"}, xattrEntry{value: big, present: true, at: time.Now()})
		if xc.bytes > maxXattrBytes {
			t.Fatalf("after %d values of 64 KiB, %d bytes cached; want at most %d", ino, xc.bytes, maxXattrBytes)
		}
	}
	if _, ok := xc.get(xattrKey{999, "system.posix_acl_access"}, time.Minute); !ok {
		t.Fatal("the latest value is not cached")
	}
	xc.forget(999)
	total := 0
	for _, e := range xc.entries {
		total += len(e.value)
	}
	if total != xc.bytes {
		t.Fatalf("byte count %d, values hold %d", xc.bytes, total)
	}
}
