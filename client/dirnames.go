package client

import (
	"sync"
	"time"
)

// dirNames keeps every name of the directories this mount created, so
// that a lookup of a name that is not there is answered without a round
// trip. That is the first lookup of every file that tar x, cp -r or an
// application creates: the kernel asks before each create, mkdir, link,
// symlink and rename target.
//
// What is kept is complete as of the directory's ctime: a new directory
// is empty, and every entry change of this mount is applied with the
// ctimes the metaserver reports around it (wire.ChangeResp). A change
// whose "before" ctime is not the kept one means someone else changed the
// directory, and what is kept is dropped. Another mount's change is
// otherwise seen when what is kept expires, the entry timeout after it
// was last confirmed: the staleness the kernel accepts for the negative
// entries it caches itself.
type dirNames struct {
	ttl time.Duration // 0: keep nothing

	mu struct {
		sync.Mutex
		dirs  map[uint64]*knownDir
		names int // over all dirs, for the bound
	}
}

type knownDir struct {
	names   map[string]struct{}
	ctime   int64     // the directory's ctime as of names
	expires time.Time // trusted until then
}

// Bounds on what is kept: a directory past maxDirNames names is dropped,
// and past maxKnownNames names or maxKnownDirs directories in all, others
// are dropped until under.
const (
	maxDirNames   = 1 << 16
	maxKnownNames = 1 << 20
	maxKnownDirs  = 1 << 14
)

// absent reports whether name is known not to be in dir.
func (k *dirNames) absent(dir uint64, name string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	d := k.mu.dirs[dir]
	if d == nil {
		return false
	}
	if time.Now().After(d.expires) {
		k.dropLocked(dir)
		return false
	}
	_, there := d.names[name]
	return !there
}

// created notes a directory this mount just made, empty as of ctime.
func (k *dirNames) created(dir uint64, ctime int64) {
	if k.ttl <= 0 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.mu.dirs == nil {
		k.mu.dirs = make(map[uint64]*knownDir)
	}
	k.dropLocked(dir)
	for d := range k.mu.dirs {
		if len(k.mu.dirs) < maxKnownDirs {
			break
		}
		k.dropLocked(d)
	}
	k.mu.dirs[dir] = &knownDir{names: map[string]struct{}{}, ctime: ctime, expires: time.Now().Add(k.ttl)}
}

// nameEdit is one name a change added to or removed from a directory.
type nameEdit struct {
	name string
	add  bool
}

// changed applies this mount's change of dir's entries: was is the
// directory's ctime before the change and at its ctime after. A was of 0
// (the change did not touch dir) drops what is kept, as does a was that
// is not the kept ctime.
func (k *dirNames) changed(dir uint64, was, at int64, edits ...nameEdit) {
	k.mu.Lock()
	defer k.mu.Unlock()
	d := k.mu.dirs[dir]
	if d == nil {
		return
	}
	if was == 0 || was != d.ctime || time.Now().After(d.expires) {
		k.dropLocked(dir)
		return
	}
	for _, e := range edits {
		_, there := d.names[e.name]
		switch {
		case e.add && !there:
			if len(d.names) >= maxDirNames {
				k.dropLocked(dir)
				return
			}
			d.names[e.name] = struct{}{}
			k.mu.names++
		case !e.add && there:
			delete(d.names, e.name)
			k.mu.names--
		}
	}
	d.ctime, d.expires = at, time.Now().Add(k.ttl)
	for dir := range k.mu.dirs {
		if k.mu.names <= maxKnownNames {
			break
		}
		k.dropLocked(dir)
	}
}

// forget drops what is kept of dir: a change in it failed, so its
// outcome, or the directory's state, is not known.
func (k *dirNames) forget(dir uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dropLocked(dir)
}

func (k *dirNames) dropLocked(dir uint64) {
	if d := k.mu.dirs[dir]; d != nil {
		k.mu.names -= len(d.names)
		delete(k.mu.dirs, dir)
	}
}
