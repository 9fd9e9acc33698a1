package metaserver

import "github.com/cairn-fs/cairn/internal/wire"

// Access times follow Linux's default, relatime: a read (of a file's
// data, or of a directory's listing) sets atime to now when atime is not
// after mtime or ctime, or is a day old. The kernel leaves atime to FUSE
// file systems; cairn applies the rule when a mount reports its first
// read through an open (MAccessed) and when it lists a directory from its
// start, so most reads cost no write at all.

// touchAtime applies the relatime rule to ino and returns its attributes
// after. It looks in a snapshot first, so an access that changes nothing
// writes nothing.
func (s *store) touchAtime(ino uint64) (attr wire.Attr, err error) {
	need := false
	err = s.view(func(tx *txn) error {
		n, err := tx.getInode(ino)
		if err == nil {
			attr, need = n.Attr, wire.NeedsAtime(&n.Attr, tx.now)
		}
		return err
	})
	if err != nil || !need {
		return attr, err
	}
	err = s.update(func(tx *txn) error {
		n, err := tx.getInode(ino)
		if err != nil {
			return err
		}
		if wire.NeedsAtime(&n.Attr, tx.now) {
			n.Atime = tx.now
			err = tx.putInode(n)
		}
		attr = n.Attr
		return err
	})
	return attr, err
}

// touchAtime applies relatime for a read that succeeded and returns the
// attributes after (Ino 0 if unknown): a failure to record the access is
// logged, and does not fail the read.
func (s *Server) touchAtime(ino uint64) wire.Attr {
	attr, err := s.store.touchAtime(ino)
	if err != nil {
		if !errorsIsNotFound(err) {
			s.cfg.Log.Warn("atime not updated", "ino", ino, "err", err)
		}
		return wire.Attr{}
	}
	return attr
}
