package fs

import (
	"sync"
	"time"

	"github.com/cairn-fs/cairn/internal/wire"
)

// recentListing keeps the last listing this mount fetched whole (a
// directory of at most one page) from the start, to answer the next
// listing of the same directory from the start once, without a round
// trip, if it comes within listingReuse and no request that may change
// anything began or ended on this mount meanwhile (setAttrReply's change
// count). GNU rm -r opens every directory twice in a row, first to see
// whether it is empty and then to empty it, so without this `rm -rf`
// lists every directory twice.
//
// What other mounts changed in the directory in that second shows in the
// listing after: the staleness is bounded by listingReuse, far inside
// the attribute timeout for which the kernel caches names anyway. A
// reused listing brings names, inode numbers and types, not the entries'
// attributes (the kernel keeps what it has), so that it never takes the
// kernel's view of a file back to before something this mount saw since.
type recentListing struct {
	mu      sync.Mutex
	ino     uint64
	at      uint64 // the change count it is valid at
	entries []wire.DirEntry
	dir     wire.Attr
	expires time.Time
}

// listingReuse is how long a kept listing may answer.
const listingReuse = time.Second

// keep keeps l, a listing of ino just fetched whole by a readdir that
// found the change count at `at` when it began and counted one change of
// its own (the atime), if nothing else changed meanwhile: now is the
// count as the readdir ends, before its own change ends.
func (r *recentListing) keep(ino, at, now uint64, l *listing) {
	if l.more || l.base != 0 || now != at+1 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ino, r.at, r.dir = ino, at+2, l.dir
	r.entries = append(r.entries[:0], l.entries...)
	r.expires = time.Now().Add(listingReuse)
}

// take fills l with the listing kept for ino if it may answer now, with
// the change count at `at`, and forgets it.
func (r *recentListing) take(ino, at uint64, l *listing) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	ok := r.ino == ino && r.at == at && time.Now().Before(r.expires)
	if ok {
		l.fill(r.entries, r.dir)
	}
	r.ino, r.entries, r.expires = 0, nil, time.Time{}
	return ok
}
