package metaserver

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/cairn-fs/cairn/internal/wire"
	badger "github.com/dgraph-io/badger/v4"
)

// A session is a client's lease: the client renews it (MSession) every
// third of the TTL. What a session holds — file locks, and files it kept
// open after their last unlink (orphans) — goes when it expires, so a
// mount that dies (kill -9, a crash, a lost network) frees them within
// the TTL. Sessions live in memory; an orphan records its session in its
// O key, so that after a metaserver restart it is kept for one TTL (the
// living client renews the session it had and keeps the file) and purged
// after that if nobody did.
type sessions struct {
	ttl time.Duration
	mu  struct {
		sync.Mutex
		expiry map[uint64]time.Time
	}
}

func newSessions(ttl time.Duration) *sessions {
	ss := &sessions{ttl: ttl}
	ss.mu.expiry = make(map[uint64]time.Time)
	return ss
}

// renew opens or extends a session.
func (ss *sessions) renew(id uint64, now time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.mu.expiry[id] = now.Add(ss.ttl)
}

// end forgets a session at once.
func (ss *sessions) end(id uint64) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.mu.expiry, id)
}

// expired removes and returns the sessions whose lease ran out.
func (ss *sessions) expired(now time.Time) []uint64 {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var gone []uint64
	for id, t := range ss.mu.expiry {
		if now.After(t) {
			gone = append(gone, id)
			delete(ss.mu.expiry, id)
		}
	}
	return gone
}

func (s *Server) session(r *wire.SessionReq) (*wire.SessionResp, error) {
	if r.Session == 0 {
		return nil, wire.Errorf(wire.CodeInvalid, "session ID 0")
	}
	if r.End {
		s.sessions.end(r.Session)
		s.endSession(r.Session)
	} else {
		s.sessions.renew(r.Session, time.Now())
	}
	return &wire.SessionResp{TTL: int64(s.sessions.ttl)}, nil
}

// endSession drops what session held: its locks and its orphans.
func (s *Server) endSession(session uint64) {
	s.locks.dropSession(session)
	inos, err := s.store.orphans(func(owner uint64) bool { return owner == session })
	if err != nil {
		s.cfg.Log.Error("list orphans of an ended session", "session", session, "err", err)
		return
	}
	for _, ino := range inos {
		if err := s.store.purge(ino); err != nil {
			s.cfg.Log.Error("purge orphan of an ended session", "ino", ino, "session", session, "err", err)
		}
	}
	if len(inos) > 0 {
		s.cfg.Log.Info("purged files a gone client kept open after unlink", "session", session, "files", len(inos))
	}
}

// expireSessions ends every session whose lease ran out.
func (s *Server) expireSessions(now time.Time) {
	for _, id := range s.sessions.expired(now) {
		s.endSession(id)
	}
}

// adoptOrphans runs at start: orphans of a session get one TTL for their
// client to renew it; orphans recorded without a session are purged.
func (s *Server) adoptOrphans() error {
	now := time.Now()
	var nobody []uint64
	_, err := s.store.orphans(func(owner uint64) bool {
		if owner != 0 {
			s.sessions.renew(owner, now)
		}
		return false
	})
	if err != nil {
		return err
	}
	nobody, err = s.store.orphans(func(owner uint64) bool { return owner == 0 })
	if err != nil {
		return err
	}
	for _, ino := range nobody {
		if err := s.store.purge(ino); err != nil {
			return err
		}
	}
	return nil
}

// orphans lists the orphans whose owning session match accepts (0 for an
// orphan that records none).
func (st *store) orphans(match func(owner uint64) bool) (inos []uint64, err error) {
	err = st.view(func(tx *txn) error {
		it := tx.NewIterator(badger.IteratorOptions{Prefix: []byte{tOrphan}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			key := it.Item().Key()
			if len(key) != 9 {
				continue
			}
			var owner uint64
			if err := it.Item().Value(func(v []byte) error {
				owner, _ = parseOrphan(v)
				return nil
			}); err != nil {
				return err
			}
			if match(owner) {
				inos = append(inos, binary.BigEndian.Uint64(key[1:]))
			}
		}
		return nil
	})
	return inos, err
}
