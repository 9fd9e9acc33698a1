package metaserver

import "github.com/cairn-fs/cairn/internal/wire"

// Access times follow Linux's default, relatime: a read (of a file's
// data, or of a directory's listing) sets atime to now when atime is not
// after mtime or ctime, or is a day old. The kernel leaves atime to FUSE
// file systems; cairn applies the rule when a mount reports its first
// read through an open (MAccessed) and when it lists a directory from its
// start, so most reads cost no write at all.

// touchAtime applies the relatime rule to ino. It looks in a snapshot
// first, so an access that changes nothing writes nothing.
func (s *store) touchAtime(ino uint64) error {
	need := false
	err := s.view(func(tx *txn) error {
		n, err := tx.getInode(ino)
		if err == nil {
			need = wire.NeedsAtime(&n.Attr, tx.now)
		}
		return err
	})
	if err != nil || !need {
		return err
	}
	return s.update(func(tx *txn) error {
		n, err := tx.getInode(ino)
		if err != nil || !wire.NeedsAtime(&n.Attr, tx.now) {
			return err
		}
		n.Atime = tx.now
		return tx.putInode(n)
	})
}

// touchAtime applies relatime for a read that succeeded: a failure to
// record the access is logged, and does not fail the read.
func (s *Server) touchAtime(ino uint64) {
	if err := s.store.touchAtime(ino); err != nil && !errorsIsNotFound(err) {
		s.cfg.Log.Warn("atime not updated", "ino", ino, "err", err)
	}
}
